"""What the scheduler tracks per matrix (the expansions of one job): how many run now,
for `max_parallel`, and whether one failed, for the matrix's own `fail_fast`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.models import JobStatus

if TYPE_CHECKING:
    from corral.plan.model import PlannedJob


class MatrixGroups:
    """Running counts and fail-fast reasons of the plan's matrices, keyed by group."""

    def __init__(self) -> None:
        self._running: dict[str, int] = {}
        self._failed: dict[str, str] = {}

    def cancelled(self, job: PlannedJob) -> str | None:
        """Why `job` must not start: another expansion of its matrix failed (else None)."""
        return self._failed.get(job.group)

    def limit(self, job: PlannedJob) -> int | None:
        """The matrix's `max_parallel` when it is reached (so `job` must wait), else None."""
        if job.matrix is None:
            return None
        from corral.plan.matrix import options  # only an expansion of a matrix gets here

        limit = options(job.spec.matrix).max_parallel
        if limit is None or self._running.get(job.group, 0) < limit:
            return None
        return limit

    def started(self, job: PlannedJob) -> None:
        self._running[job.group] = self._running.get(job.group, 0) + 1

    def ended(self, job: PlannedJob) -> None:
        self._running[job.group] -= 1

    def failed(self, job: PlannedJob, status: JobStatus) -> str | None:
        """The reason to cancel the other expansions when `job` ended `status` and its
        matrix fails fast (GitHub's default); None when nothing is to be cancelled."""
        failure = status in (JobStatus.FAILED, JobStatus.TIMED_OUT)
        if not failure or job.matrix is None or job.spec.continue_on_error:
            return None
        from corral.plan.matrix import options

        if job.group in self._failed or not options(job.spec.matrix).fail_fast:
            return None
        reason = f"fail-fast: '{job.name}' {status.value}"
        self._failed[job.group] = reason
        return reason
