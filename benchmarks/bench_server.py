"""Server benchmark: 100 WebSocket clients following a 1,000-job run.

    python benchmarks/bench_server.py [--quick]

The flow (1,000 jobs of `true` at concurrency 8) runs twice: once with `corral run` and
no server (the baseline), once submitted to `corral serve` while N clients (in 4
processes) follow the run's events over the WebSocket. Reported: delivery latency p50/p99
from each live event's creation (the `ts` the history stamps when the event is
published) to its arrival at a client, for the events made after the client connected;
the server's peak RSS and CPU time (its own, not its run workers'); the run's wall time
(its record's end minus start) with the server against without. Targets: p99 < 100 ms,
RSS < 200 MB, run slowed < 5 %. Every client must receive every event exactly once, in
order.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from websockets.asyncio.client import connect

CORRAL = [sys.executable, "-m", "corral"]
TOKEN = "bench-token-" + "b" * 24
PROCESSES = 4  # client processes


def flow_text(jobs: int) -> str:
    """`jobs` jobs of `true` at concurrency 8, behind a 5 s gate (the same in both runs),
    so that the clients are connected before the bulk of the events comes."""
    body = "".join(f"  j{i}: {{run: ['true'], needs: [gate]}}\n" for i in range(jobs))
    return f"concurrency: 8\njobs:\n  gate: {{run: ['sleep', '5']}}\n{body}"


def run_seconds(directory: Path, run_id: str | None = None) -> tuple[str, float]:
    """A run's recorded wall time (end - start) in the history under `directory`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from corral.app.location import open_history

    history = open_history(None, directory)
    assert history is not None
    try:
        row = history.list_runs(limit=1)[0] if run_id is None else history.get_run(run_id).run
        assert row.ended_at is not None
        return row.id, row.ended_at - row.started_at
    finally:
        history.close()


def baseline(work: Path, jobs: int) -> float:
    folder = Path(tempfile.mkdtemp(dir=work))
    (folder / "flow.yaml").write_text(flow_text(jobs))
    subprocess.run(
        [*CORRAL, "run", "flow.yaml", "-q"], cwd=folder, check=True, stdout=subprocess.DEVNULL
    )
    return run_seconds(folder)[1]


def start_server(folder: Path) -> tuple[psutil.Popen, str]:
    proc = psutil.Popen(
        [*CORRAL, "serve", "--port", "0", "--token", TOKEN, "--dir", str(folder)],
        cwd=folder,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, found.group(1)
    raise SystemExit("the server did not start")


async def client(url: str, run_id: str) -> tuple[int, list[float]]:
    """Follow `run_id` from its first event; the seqs must be 1, 2, ... A client told to
    resync (it fell behind its bounded queue) reconnects from its last seq, as the CLI and
    the dashboard do. The latency of the frames created after this client connected (the
    live ones; those made before are a replay, whose "latency" is the connection's) is
    returned."""
    lags: list[float] = []
    last = 0
    since: float | None = None
    while True:
        async with connect(
            f"{url.replace('http://', 'ws://')}/api/v1/events?run={run_id}&after={last}",
            additional_headers={"Authorization": f"Bearer {TOKEN}"},
            max_size=None,
            ping_interval=None,  # many clients in one process: the server's pings are enough
        ) as socket:
            if since is None:
                since = time.time()
            async for message in socket:
                now = time.time()
                frame = orjson.loads(message)
                if "seq" not in frame:  # a heartbeat, or a resync: reconnect from `last`
                    if frame["type"] == "heartbeat":
                        continue
                    break
                if frame["seq"] != last + 1:
                    raise SystemExit(f"client got seq {frame['seq']} after {last}")
                last = frame["seq"]
                if frame["ts"] >= since:
                    lags.append(now - frame["ts"])
                if frame["type"] == "RunFinished":
                    return last, lags


def client_process(url: str, orders: Any, count: int, out: Any) -> None:
    """`count` clients in one process (several processes, so that reading 200,000
    frames is not the bottleneck being measured); started before the run, they get its
    id from `orders`."""
    run_id = orders.get(timeout=600)

    async def many() -> list[tuple[int, list[float]]]:
        return await asyncio.gather(*(client(url, run_id) for _ in range(count)))

    results = asyncio.run(many())
    out.put(([total for total, _ in results], [lag for _, lags in results for lag in lags]))


def followed(url: str, clients: int, jobs: int) -> tuple[list[float], list[int], str]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    orders = context.Queue()
    shares = [clients // PROCESSES + (i < clients % PROCESSES) for i in range(PROCESSES)]
    workers = [
        context.Process(target=client_process, args=(url, orders, n, out)) for n in shares if n
    ]
    for worker in workers:
        worker.start()
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
        response = http.post(url + "/api/v1/runs", json={"flow": flow_text(jobs)})
        response.raise_for_status()
        run_id = response.json()["run_id"]
    for _ in workers:
        orders.put(run_id)
    totals: list[int] = []
    lags: list[float] = []
    for _ in workers:
        got_totals, got_lags = out.get(timeout=600)
        totals += got_totals
        lags += got_lags
    for worker in workers:
        worker.join()
    return lags, totals, run_id


def with_server(
    work: Path, jobs: int, clients: int
) -> tuple[list[float], list[int], float, int, float]:
    folder = Path(tempfile.mkdtemp(dir=work))
    proc, url = start_server(folder)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        lags, totals, run_id = followed(url, clients, jobs)
        used = proc.cpu_times()  # the server's own CPU (its run workers are children)
        cpu = used.user + used.system
    finally:
        stop.set()
        watcher.join()
        proc.terminate()
        proc.wait(30)
    return lags, totals, run_seconds(folder, run_id)[1], peak, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    jobs, clients = (200, 20) if args.quick else (1000, 100)
    alone_times: list[float] = []
    served_times: list[float] = []
    lags: list[float] = []
    peak = 0
    server_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # alternated, so that the machine's load falls on both alike; medians reported
        for _ in range(args.rounds):
            alone_times.append(baseline(work, jobs))
            round_lags, totals, served_s, round_peak, cpu = with_server(work, jobs, clients)
            server_cpu.append(cpu)
            if len(set(totals)) != 1 or totals[0] <= 0:
                raise SystemExit(f"clients disagree on the event count: {sorted(set(totals))}")
            lags += round_lags
            served_times.append(served_s)
            peak = max(peak, round_peak)
    alone, served = statistics.median(alone_times), statistics.median(served_times)
    cuts = statistics.quantiles(lags, n=100)
    p50, p99 = statistics.median(lags) * 1000, cuts[98] * 1000
    slowed = (served / alone - 1) * 100
    print(
        f"server {clients} ws clients x {jobs}-job run ({totals[0]} events each, all in order) | "
        f"latency p50 {p50:.1f} ms p99 {p99:.1f} ms (target < 100) | "
        f"server peak RSS {peak / 2**20:.0f} MB (target < 200), "
        f"CPU {statistics.median(server_cpu):.1f}s | "
        f"run {served:.2f}s vs {alone:.2f}s without a server ({slowed:+.1f} %, target < 5 %; "
        f"medians of {args.rounds} alternated rounds; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
