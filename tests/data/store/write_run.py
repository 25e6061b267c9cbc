"""Write one run of N jobs into a store, as a corral process would (used by two-process tests).

python write_run.py URL RUN_ID JOBS EVENTS_PER_JOB
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

from corral.events.types import AssistantText, JobFinished, JobStarted, RunFinished, RunStarted
from corral.models import Cost, CostSource, JobStatus, RunStatus, Usage
from corral.store import StoreWriter, open_store


async def main(url: str, run_id: str, jobs: int, per_job: int) -> None:
    store = open_store(url, Path("unused.db"))
    writer = StoreWriter(store)
    names = tuple(f"job{i}" for i in range(jobs))
    writer(
        RunStarted(
            run_id=run_id, flow_name="twins", flow_path="t.yaml", jobs=names, started_at=time.time()
        )
    )
    for name in names:
        writer(
            JobStarted(
                job=name, attempt=1, pid=1, argv=("x",), log_dir="/l", started_at=time.time()
            )
        )
        for i in range(per_job):
            writer(AssistantText(job=name, attempt=1, text=f"line {i}"))
            if i % 50 == 0:
                await asyncio.sleep(0)
        writer(
            JobFinished(
                job=name,
                attempt=1,
                status=JobStatus.SUCCEEDED,
                exit_code=0,
                signal=None,
                duration_s=1.0,
                by_model={"m": Usage(input_tokens=1, output_tokens=1)},
                cost=Cost(Decimal("0.001"), CostSource.ESTIMATED),
                cost_by_model={"m": Decimal("0.001")},
            )
        )
        if not await writer.sync():
            raise SystemExit(f"sync failed for {name}")
    writer(RunFinished(run_id=run_id, status=RunStatus.SUCCEEDED, ended_at=time.time()))
    writer.close()
    store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
