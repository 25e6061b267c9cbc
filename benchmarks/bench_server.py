"""Server benchmark: 100 WebSocket clients following a 1,000-job run.

    python benchmarks/bench_server.py [--quick] [--client light] [--protocol frames]

The flow (1,000 jobs of `true` at concurrency 8) runs twice: once with `corral run` and
no server (the baseline), once submitted to `corral serve` while N clients (in 4
processes) follow the run's events over the WebSocket. Reported: delivery latency p50/p99
from each live event's creation (the `ts` the history stamps when the event is
published) to its arrival at a client, for the events made after the client connected;
the server's peak RSS and CPU time (its own, not its run workers'); the run's wall time
(its record's end minus start) with the server against without. Targets: p99 < 100 ms,
RSS < 200 MB, run slowed < 5 %. Every client must receive every event exactly once, in
order. Also reported: frames per message; the server's CPU to start (until it listens)
and the clients' CPU following (after their start); the run's time from its submission
(or the command's launch, without a server) to its recorded end, which counts the
server's flow check and its worker's start, as `corral run`'s own start without one;
and the run's CPU: its worker's and its jobs' (the server's reaped children), against
`corral run`'s and its jobs' without a server (what the run pays for being served).
Also the machine's CPU use (all cores, /proc/stat) while the live events flowed, and in the
2.5 s before them (the end of the run's gate: the other sessions' use): the 1,000 jobs
run in a burst of a few seconds, and the latencies wait for a CPU there, not on the run's
average.

    python benchmarks/bench_server.py --against /tmp/main/src   # main's server too, same rounds
    python benchmarks/bench_server.py --serve-arg=--batch-window=0

The clients ask for batched messages (`batch=true`: a message holds the frames that were
ready, as `corral run --server` asks); `--protocol frames` measures one frame a message
(the default protocol, the dashboard's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from corral.server.client import received  # the src folder first

CORRAL = [sys.executable, "-m", "corral"]
TOKEN = "bench-token-" + "b" * 24
PROCESSES = 4  # client processes


def flow_text(jobs: int) -> str:
    """`jobs` jobs of `true` at concurrency 8, behind a 5 s gate (the same in both runs),
    so that the clients are connected before the bulk of the events comes."""
    body = "".join(f"  j{i}: {{run: ['true'], needs: [gate]}}\n" for i in range(jobs))
    return f"concurrency: 8\njobs:\n  gate: {{run: ['sleep', '5']}}\n{body}"


def recorded(directory: Path, run_id: str | None = None) -> tuple[str, float, float]:
    """A run's id, start and end as recorded in the history under `directory`."""
    from corral.app.location import open_history

    history = open_history(None, directory)
    assert history is not None
    try:
        row = history.list_runs(limit=1)[0] if run_id is None else history.get_run(run_id).run
        assert row.ended_at is not None
        return row.id, row.started_at, row.ended_at
    finally:
        history.close()


def baseline(work: Path, jobs: int) -> tuple[float, float, float]:
    """The run with no server: its recorded wall time (end - start), the time from the
    command's launch to the recorded end, and its CPU (the command's and its jobs')."""
    folder = Path(tempfile.mkdtemp(dir=work))
    # its own history: a `.corral` above the temporary folder would be taken otherwise
    (folder / ".corral").mkdir()
    (folder / "flow.yaml").write_text(flow_text(jobs))
    launched = time.time()
    before = _children_cpu()
    subprocess.run(
        [*CORRAL, "run", "flow.yaml", "-q"], cwd=folder, check=True, stdout=subprocess.DEVNULL
    )
    used = _children_cpu() - before
    _, started, ended = recorded(folder)
    return ended - started, ended - launched, used


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def start_server(folder: Path, serve_args: list[str]) -> tuple[psutil.Popen, str]:
    proc = psutil.Popen(
        [*CORRAL, "serve", "--port", "0", "--token", TOKEN, "--dir", str(folder), *serve_args],
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


def frames_in(payload: bytes | str, batch: bool) -> list[dict[str, Any]]:
    frames = orjson.loads(payload)
    return frames if batch else [frames]


class Tally:
    """What one client received: the seqs must be 1, 2, ... with no gap or repeat; the
    latency of each frame created after the client first connected is kept."""

    def __init__(self) -> None:
        self.last = 0
        self.since: float | None = None
        self.lags: list[float] = []
        self.messages = 0
        self.made: list[float] = []  # each live frame's creation
        self.end = 0.0  # when the run's last frame came

    def connected(self) -> None:
        if self.since is None:
            self.since = time.time()

    def take(self, payload: bytes | str, batch: bool, now: float) -> tuple[bool, bool]:
        """Check one message's frames: (the run finished, the server said resync)."""
        resync = False
        self.messages += 1
        for frame in frames_in(payload, batch):
            if "seq" not in frame:  # a heartbeat, or a resync: reconnect from `last`
                resync = resync or frame["type"] != "heartbeat"
                continue
            if frame["seq"] != self.last + 1:
                raise SystemExit(f"client got seq {frame['seq']} after {self.last}")
            self.last = frame["seq"]
            assert self.since is not None
            if frame["ts"] >= self.since:
                self.lags.append(now - frame["ts"])
                self.made.append(frame["ts"])
            if frame["type"] == "RunFinished":
                self.end = now
                return True, resync
        return False, resync


async def client(url: str, run_id: str, batch: bool) -> Tally:
    """Follow `run_id` from its first event; the seqs must be 1, 2, ... A client told to
    resync (it fell behind its bounded queue) reconnects from its last seq, as the CLI and
    the dashboard do. The latency of the frames created after this client connected (the
    live ones; those made before are a replay, whose "latency" is the connection's) is
    kept."""
    tally = Tally()
    while True:
        async with connect(
            f"{url.replace('http://', 'ws://')}/api/v1/events?run={run_id}&after={tally.last}"
            + ("&batch=true" if batch else ""),
            additional_headers={"Authorization": f"Bearer {TOKEN}"},
            max_size=None,
            ping_interval=None,  # many clients in one process: the server's pings are enough
        ) as socket:
            tally.connected()
            async for message in received(socket):  # bytes, as corral run --server reads
                finished, resync = tally.take(message, batch, time.time())
                if finished:
                    return tally
                if resync:
                    break


class Frames:
    """The server's WebSocket frames in a byte stream (RFC 6455: from a server they are
    unmasked), parsed by hand: the `light` client's whole cost per message is this and
    one `orjson.loads`, so 100 clients in 4 processes do not outweigh the server."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        self.data += chunk
        found = []
        data = self.data
        while len(data) >= 2:
            size, start = data[1] & 0x7F, 2
            if size == 126:
                if len(data) < 4:
                    break
                size, start = int.from_bytes(data[2:4]), 4
            elif size == 127:
                if len(data) < 10:
                    break
                size, start = int.from_bytes(data[2:10]), 10
            if len(data) < start + size:
                break
            found.append((data[0] & 0x0F, bytes(data[start : start + size])))
            del data[: start + size]
        return found


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (RFC 6455 masks them; a zero mask keeps the payload as is)."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def light_client(url: str, run_id: str, batch: bool) -> Tally:
    """`client` over a plain socket: the same handshake, frames, checks and reconnects."""
    host, port = url.removeprefix("http://").split(":")
    tally = Tally()
    while True:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                f"GET /api/v1/events?run={run_id}&after={tally.last}"
                f"{'&batch=true' if batch else ''}"
                " HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: YmVuY2gtY2xpZW50LWtleQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise SystemExit(f"the server refused the socket: {head[:200]!r}")
        tally.connected()
        frames = Frames()
        try:
            while chunk := await reader.read(1 << 18):
                now = time.time()
                for opcode, payload in frames.feed(chunk):
                    if opcode == 0x9:  # ping
                        writer.write(_masked(0xA, payload))
                        continue
                    if opcode != 0x1:
                        continue  # a close: reconnect below
                    # a resync is followed by the server's close: reconnect below
                    if tally.take(payload, batch, now)[0]:
                        return tally
        finally:
            writer.close()


def _burst_start(made: list[list[float]]) -> float:
    """When the live frames start to flow (their 1st percentile of creation: the few
    made in the run's gate, which a client connected early sees, are left out)."""
    times = sorted(ts for each in made for ts in each)
    return times[len(times) // 100] if times else float("inf")


def client_process(
    url: str, orders: Any, count: int, out: Any, ready: Any, light: bool, batch: bool
) -> None:
    """`count` clients in one process (several processes, so that reading 200,000
    frames is not the bottleneck being measured); started before the run, they say when
    their imports are done (`ready`: the run is submitted only then, so that four
    interpreters starting do not compete with the run's worker starting, which a real
    client started earlier does not) and get its id from `orders`. Puts the seqs, the
    latencies, the process's CPU time and the part of it spent following (after its
    start: imports)."""
    ready.put(os.getpid())
    run_id = orders.get(timeout=600)
    started = _cpu()
    follow = light_client if light else client

    async def many() -> list[Tally]:
        return await asyncio.gather(*(follow(url, run_id, batch) for _ in range(count)))

    results = asyncio.run(many())
    used = _cpu()
    out.put(
        (
            [tally.last for tally in results],
            [lag for tally in results for lag in tally.lags],
            used,
            used - started,
            sum(tally.messages for tally in results),
            (_burst_start([t.made for t in results]), max(t.end for t in results)),
        )
    )


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


@dataclass
class Round:
    """One run followed by the clients: what they got and what it cost."""

    lags: list[float] = field(default_factory=list)  # seconds, every live frame's
    totals: list[int] = field(default_factory=list)  # the last seq each client got
    messages: int = 0  # WebSocket messages the clients got, all together
    live: tuple[float, float] = (float("inf"), 0.0)  # the live frames' burst: made, last received
    busy: float = float("nan")  # the machine's CPU use (all cores) while the live frames flowed
    busy_before: float = float("nan")  # the same in the gate's end (the other sessions' use)
    clients_cpu: float = 0.0
    clients_following_cpu: float = 0.0  # without their start (imports)
    server_cpu: float = 0.0
    server_start_cpu: float = 0.0  # until it listens (imports, the history's migrations)
    peak: int = 0  # the server's peak RSS
    run_id: str = ""
    run_s: float = 0.0  # recorded: from the run's start (when the server made its id)
    asked_at: float = 0.0  # when it was submitted
    asked_s: float = 0.0  # from its submission to its recorded end
    run_cpu: float = 0.0  # the run's worker and its jobs (the server's reaped children)


def followed(url: str, clients: int, jobs: int, light: bool, batch: bool) -> Round:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    orders = context.Queue()
    ready = context.Queue()
    shares = [clients // PROCESSES + (i < clients % PROCESSES) for i in range(PROCESSES)]
    workers = [
        context.Process(target=client_process, args=(url, orders, n, out, ready, light, batch))
        for n in shares
        if n
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=600)  # every client process has started (its imports done)
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
        asked_at = time.time()
        response = http.post(url + "/api/v1/runs", json={"flow": flow_text(jobs)})
        response.raise_for_status()
        got = Round(run_id=response.json()["run_id"], asked_at=asked_at)
    for _ in workers:
        orders.put(got.run_id)
    for _ in workers:
        totals, lags, cpu, following, messages, (first, end) = out.get(timeout=600)
        got.live = (min(got.live[0], first), max(got.live[1], end))
        got.totals += totals
        got.lags += lags
        got.clients_cpu += cpu
        got.clients_following_cpu += following
        got.messages += messages
    for worker in workers:
        worker.join()
    return got


def with_server(
    work: Path, jobs: int, clients: int, light: bool, batch: bool, serve_args: list[str]
) -> Round:
    folder = Path(tempfile.mkdtemp(dir=work))
    proc, url = start_server(folder, serve_args)
    start = proc.cpu_times()
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
    samples: list[tuple[float, int, int]] = []
    sampler = threading.Thread(target=_sample_cpu, args=(stop, samples), daemon=True)
    sampler.start()
    try:
        got = followed(url, clients, jobs, light, batch)
        deadline = time.monotonic() + 30
        while proc.children() and time.monotonic() < deadline:
            time.sleep(0.02)  # the run's worker, until the server reaped it
        used = proc.cpu_times()  # the server's own CPU (its run workers are children)
        got.server_cpu = used.user + used.system
        got.run_cpu = used.children_user + used.children_system
    finally:
        stop.set()
        watcher.join()
        sampler.join()
        proc.terminate()
        proc.wait(30)
    got.peak = peak
    # the 1,000 jobs run in a burst of a few seconds after the gate: the CPU use then (not
    # the run's average, which counts the gate) is what the latencies wait on
    got.busy = _busy(samples, *got.live)
    # the gate's last 2.5 s (the worker started, the clients connected): other sessions' use
    got.busy_before = _busy(samples, got.live[0] - 3.0, got.live[0] - 0.5)
    got.server_start_cpu = start.user + start.system
    _, started, ended = recorded(folder, got.run_id)
    got.run_s, got.asked_s = ended - started, ended - got.asked_at
    return got


def _sample_cpu(stop: threading.Event, samples: list[tuple[float, int, int]]) -> None:
    """The machine's busy and total CPU time (/proc/stat, all cores) every 50 ms."""
    while not stop.is_set():
        try:
            with open("/proc/stat") as stat:
                ticks = [int(n) for n in stat.readline().split()[1:]]
        except OSError:  # not Linux: no figure
            return
        samples.append((time.time(), sum(ticks) - ticks[3] - ticks[4], sum(ticks)))
        time.sleep(0.05)


def _busy(samples: list[tuple[float, int, int]], start: float, end: float) -> float:
    """The share of all cores busy between `start` and `end` (nan when too short)."""
    inside = [sample for sample in samples if start <= sample[0] <= end]
    if len(inside) < 2 or inside[-1][2] == inside[0][2]:
        return float("nan")
    return (inside[-1][1] - inside[0][1]) / (inside[-1][2] - inside[0][2])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--client",
        choices=("websockets", "light"),
        default="websockets",
        help="the clients' WebSocket code: the websockets library, or frames parsed by hand "
        "(whose CPU does not crowd the server out on a small machine)",
    )
    parser.add_argument(
        "--protocol",
        choices=("batched", "frames"),
        default="batched",
        help="batched messages (batch=true, as corral run --server asks), or one frame a "
        "message (the default protocol, the dashboard's)",
    )
    parser.add_argument("--clients", type=int, help="how many clients (to see where time goes)")
    parser.add_argument("--jobs", type=int, help="how many jobs in the run")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG on to corral serve (e.g. --serve-arg=--batch-window=0)",
    )
    parser.add_argument(
        "--against",
        metavar="SRC",
        help="each round, also follow the run on the server of another tree's src folder "
        "(e.g. main's, archived), in the same session: a second line of figures",
    )
    args = parser.parse_args()
    light = args.client == "light"
    batch = args.protocol == "batched"
    jobs, clients = (200, 20) if args.quick else (1000, 100)
    jobs, clients = args.jobs or jobs, args.clients or clients
    trees = {"this tree": None, **({f"{args.against}": args.against} if args.against else {})}
    alone_times: list[float] = []
    alone_asked: list[float] = []
    alone_cpu: list[float] = []
    rounds: dict[str, list[Round]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # alternated, so that the machine's load falls on all alike; medians reported
        for _ in range(args.rounds):
            alone_s, asked_s, cpu_s = baseline(work, jobs)
            alone_times.append(alone_s)
            alone_asked.append(asked_s)
            alone_cpu.append(cpu_s)
            for name, src in trees.items():
                with source(src):
                    got = with_server(work, jobs, clients, light, batch, args.serve_arg)
                if len(set(got.totals)) != 1 or got.totals[0] <= 0:
                    raise SystemExit(f"clients disagree on the event count: {set(got.totals)}")
                rounds[name].append(got)
                _round_line(name, len(rounds[name]), got, alone_s)
    alone = statistics.median(alone_times)
    alone_from_launch = statistics.median(alone_asked)
    alone_used = statistics.median(alone_cpu)
    for name, measured in rounds.items():
        lags = [lag for got in measured for lag in got.lags]
        cuts = statistics.quantiles(lags, n=100)
        p50, p99 = statistics.median(lags) * 1000, cuts[98] * 1000
        served = median(measured, "run_s")
        slowed = (served / alone - 1) * 100
        asked = median(measured, "asked_s")
        events = measured[0].totals[0]
        per_message = events * clients / statistics.median(got.messages for got in measured)
        print(
            f"server ({name}) {clients} ws clients ({args.client}, {args.protocol}) x "
            f"{jobs}-job run ({events} events each, all in order, "
            f"{per_message:.1f} a message) | "
            f"latency p50 {p50:.1f} ms p99 {p99:.1f} ms (target < 100) | "
            f"machine CPU busy while the events flowed "
            f"{median(measured, 'busy') * 100:.0f} % ({median(measured, 'busy_before') * 100:.0f} %"
            f" in the 2.5 s before them, the run's gate) | "
            f"server peak RSS {max(got.peak for got in measured) / 2**20:.0f} MB "
            f"(target < 200), CPU {median(measured, 'server_cpu'):.2f}s, "
            f"{median(measured, 'server_start_cpu'):.2f}s of it to start "
            f"(clients {median(measured, 'clients_cpu'):.2f}s, "
            f"{median(measured, 'clients_following_cpu'):.2f}s following) | "
            f"run {served:.2f}s vs {alone:.2f}s without a server ({slowed:+.1f} %, target < 5 %;"
            f" from the submission, or the command's launch, to the end: {asked:.2f}s vs "
            f"{alone_from_launch:.2f}s, {(asked / alone_from_launch - 1) * 100:+.1f} %;"
            f" the run's CPU, its worker's and jobs': {median(measured, 'run_cpu'):.2f}s vs "
            f"{alone_used:.2f}s, {(median(measured, 'run_cpu') / alone_used - 1) * 100:+.1f} %;"
            f" medians of {args.rounds} alternated rounds; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )
    return 0


def _round_line(name: str, number: int, got: Round, alone_s: float) -> None:
    """One round's figures on stderr (the ranges behind the medians)."""
    cuts = statistics.quantiles(got.lags, n=100)
    print(
        f"round {number} ({name}): p50 {statistics.median(got.lags) * 1000:.1f} ms "
        f"p99 {cuts[98] * 1000:.1f} ms | busy {got.busy * 100:.0f} % "
        f"({got.busy_before * 100:.0f} % before) | server CPU {got.server_cpu:.2f}s "
        f"({got.server_cpu - got.server_start_cpu:.2f}s following), "
        f"{got.messages / len(got.totals):.0f} messages a client | "
        f"run {got.run_s:.2f}s vs {alone_s:.2f}s alone ({(got.run_s / alone_s - 1) * 100:+.1f} %)"
        f" | load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
        flush=True,
    )


def median(measured: list[Round], name: str) -> float:
    return float(statistics.median(getattr(got, name) for got in measured))


@contextlib.contextmanager
def source(src: str | None) -> Iterator[None]:
    """Run corral (the server, and so its workers) from `src` while inside (None: this
    interpreter's own)."""
    if src is None:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(Path(src).resolve())
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
