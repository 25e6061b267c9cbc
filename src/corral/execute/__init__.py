"""Running jobs: one child process (`process`), the executor seam, and the scheduler."""
