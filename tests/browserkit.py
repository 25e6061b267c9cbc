"""What the dashboard's browser tests need: Debian's Chromium, a real `corral serve` on a
free port, a TCP relay in front of it whose connections a test can cut (a network drop
as the browser sees it), and screenshots kept under the test's temporary folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
TOKEN = "dashboard-test-token-0123456789"


def chromium_path() -> str:
    """Debian's chromium (CORRAL_CHROMIUM overrides); skip outside CI when there is none."""
    given = os.environ.get("CORRAL_CHROMIUM")
    found = given if given and Path(given).exists() else None
    for name in CHROMIUM_NAMES:
        found = found or shutil.which(name)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("no chromium in CI: scripts/test.sh installs it (apt-get install chromium)")
    pytest.skip("no chromium found: apt-get install chromium (or set CORRAL_CHROMIUM)")
    raise AssertionError  # pytest.skip raises


@dataclass
class Server:
    url: str
    token: str
    directory: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@contextmanager
def corral_server(directory: Path) -> Iterator[Server]:
    """`corral serve --port 0` in its own process group, until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "serve.log"
    argv = [sys.executable, "-m", "corral", "serve", "--port", "0", "--dir", str(directory)]
    argv += ["--token", TOKEN]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True
        )
    server = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "listening on " in text:
                url = text.split("listening on ", 1)[1].split()[0]
                server = Server(url, TOKEN, directory, process, log)
                break
            if process.poll() is not None:
                raise AssertionError(f"corral serve exited {process.returncode}: {text}")
            time.sleep(0.05)
        else:
            raise AssertionError("corral serve did not start: " + log.read_text(errors="replace"))
        yield server
    finally:
        if server is not None:
            server.stop()
        elif process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@dataclass
class Relay:
    """A TCP relay on 127.0.0.1 to `target`; `drop()` cuts every open connection."""

    target: tuple[str, int]
    listener: socket.socket = field(init=False)
    pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    drops: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def drop(self) -> int:
        """Cut every connection open now, as a network drop would; how many were cut."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.drops += 1
        return len(pairs)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.drop()


class Shots:
    """Screenshots of each page, kept under the test's temporary folder (paths printed)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "screenshots"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []

    def take(self, page: object, name: str) -> Path:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        self.paths.append(path)
        print(f"screenshot: {path}")
        return path
