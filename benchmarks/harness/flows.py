"""The text of the benchmark flows: the runs measured and the runs in generated histories."""

from __future__ import annotations

import json
import random


def flat(jobs: int, concurrency: int = 8) -> str:
    """N `true` jobs."""
    body = "".join(f"  j{i}: {{run: ['true']}}\n" for i in range(jobs))
    return f"concurrency: {concurrency}\njobs:\n{body}"


def dag(jobs: int, concurrency: int = 8) -> tuple[str, int]:
    """N `true` jobs, each needing 3 of the 200 jobs before it (seeded); and the edge count."""
    rng = random.Random(7)
    edges = 0
    body = []
    for i in range(jobs):
        needs = sorted(rng.sample(range(max(0, i - 200), i), min(3, i))) if i else []
        edges += len(needs)
        need_text = f", needs: [{', '.join(f'd{n}' for n in needs)}]" if needs else ""
        body.append(f"  d{i}: {{run: ['true']{need_text}}}\n")
    return f"concurrency: {concurrency}\njobs:\n" + "".join(body), edges


def command(name: str, jobs: int, concurrency: int, argv: list[str]) -> str:
    """N jobs running the same command line."""
    run = json.dumps(argv)
    body = "".join(f"  {name}{i}: {{run: {run}}}\n" for i in range(jobs))
    return f"concurrency: {concurrency}\njobs:\n{body}"


def agents(jobs: int) -> str:
    """N Claude jobs with the same prompt, all at once."""
    body = "".join(f"  a{i}: {{tool: claude, prompt: go}}\n" for i in range(jobs))
    return f"concurrency: {jobs}\njobs:\n{body}"


def zen(jobs: int) -> str:
    """The same N Claude jobs in zen's own config format (`{"instances": [...]}`)."""
    instances = [{"name": f"a{i}", "command": "go"} for i in range(jobs)]
    return json.dumps({"instances": instances}, indent=1)
