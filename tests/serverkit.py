"""A real `corral serve` for the server tests: a child process on 127.0.0.1 and a free
port (the server binds port 0 and says which it got), with HTTP and WebSocket helpers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TOKEN = "test-token-" + "x" * 20
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


@dataclass
class LiveServer:
    proc: subprocess.Popen[str]
    url: str
    token: str
    directory: Path
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", headers=self.headers(), timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if self.reader is not None:
                self.reader.join(5)
            if self.proc.stderr is not None:
                self.proc.stderr.close()


def start_server(directory: Path, *args: str, token: str | None = TOKEN) -> LiveServer:
    """`corral serve --port 0` in `directory`; returns once it listens."""
    command = [sys.executable, "-m", "corral", "serve", "--port", "0", "--dir", str(directory)]
    if token is not None:
        command += ["--token", token]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CORRAL_SERVER_TOKEN", None)
    proc = subprocess.Popen(
        [*command, *args], cwd=directory, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stderr is not None
    log: list[str] = []
    deadline = time.monotonic() + 30
    url = None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line)
        found = LISTENING.search(line)
        if found:
            url = found.group(1)
            break
    if url is None:
        proc.kill()
        proc.wait()
        raise AssertionError("the server did not start:\n" + "".join(log))
    stream = proc.stderr

    def drain() -> None:
        for line in stream:
            log.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    return LiveServer(proc, url, token or "", directory, log, reader)


def submit(server: LiveServer, flow: str, **extra: Any) -> str:
    with server.client() as http:
        response = http.post("/runs", json={"flow": flow, "filename": "flow.yaml", **extra})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def wait_run(server: LiveServer, run_id: str, timeout: float = 60) -> dict[str, Any]:
    """The run's document once it is no longer running."""
    deadline = time.monotonic() + timeout
    with server.client() as http:
        while time.monotonic() < deadline:
            response = http.get(f"/runs/{run_id}")
            if response.status_code == 200:
                document: dict[str, Any] = response.json()
                if document["run"]["status"] != "running":
                    return document
            time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end in {timeout}s")


def stored_seqs(directory: Path, run_id: str) -> list[int]:
    from corral.app.location import open_history

    history = open_history(None, directory)
    assert history is not None
    try:
        return [s.seq for s in history.events(run_id)]
    finally:
        history.close()


def sleeping_flow(jobs: int, seconds: float, concurrency: int = 4) -> str:
    lines = ["version: 1", f"concurrency: {concurrency}", "jobs:"]
    for index in range(jobs):
        lines.append(f"  j{index}:")
        lines.append(f'    run: sh -c "sleep {seconds}; echo done {index}"')
    return "\n".join(lines) + "\n"
