"""The run locks: a look at a lock never passes for its holder, and never stops a process
from taking it (two `corral resume`s started together named a dead run's stale pid)."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.execute.liveness import RunLock, describe_holder, lock_owner, named_owner


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    path = tmp_path / "corral.lock"
    # what a run killed with -9 leaves: its pid and host, nobody holding the lock
    path.write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    return path


def _held(path: Path, how: int) -> int:
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, how | fcntl.LOCK_NB)
    return fd


def test_a_look_during_another_look_sees_nobody(lock_file: Path) -> None:
    looking = _held(lock_file, fcntl.LOCK_SH)  # another process's look, at this instant
    try:
        assert lock_owner(lock_file) is None
    finally:
        os.close(looking)


def test_a_lock_is_taken_while_a_look_holds_it_for_an_instant(lock_file: Path) -> None:
    looking = _held(lock_file, fcntl.LOCK_SH)
    threading.Timer(0.02, os.close, (looking,)).start()
    lock = RunLock(lock_file.parent)  # tries again while the look lasts
    try:
        assert lock_owner(lock_file) == (os.getpid(), socket.gethostname())
    finally:
        lock.release()


def test_a_held_lock_is_refused_after_the_moment_of_trying_again(lock_file: Path) -> None:
    holding = RunLock(lock_file.parent)
    try:
        with pytest.raises(BlockingIOError):
            RunLock(lock_file.parent)
    finally:
        holding.release()
    RunLock(lock_file.parent).release()  # and taken once it is free


@pytest.fixture
def just_taken(lock_file: Path) -> Iterator[int]:
    """The lock held by a process that has not written its pid yet: the file still names
    the dead one."""
    fd = _held(lock_file, fcntl.LOCK_EX)
    try:
        yield fd
    finally:
        os.close(fd)


def test_a_holder_that_has_not_written_its_pid_is_not_named_by_the_dead_one(
    lock_file: Path, just_taken: int
) -> None:
    assert lock_owner(lock_file) == (-1, "")
    assert describe_holder(lock_file, wait_s=0.05) == "another corral"


def test_the_holders_name_is_waited_for(lock_file: Path, just_taken: int) -> None:
    def write() -> None:
        os.ftruncate(just_taken, 0)
        os.pwrite(just_taken, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)

    threading.Timer(0.05, write).start()
    assert named_owner(lock_file, wait_s=5.0) == (os.getpid(), socket.gethostname())
    assert describe_holder(lock_file) == f"corral process {os.getpid()} on {socket.gethostname()}"


def test_a_holder_on_another_host_is_named_as_written(lock_file: Path, just_taken: int) -> None:
    os.pwrite(just_taken, b"4242 elsewhere\n".ljust(80), 0)
    assert lock_owner(lock_file) == (4242, "elsewhere")


def test_a_supervisors_lock_names_its_pid_alone(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.lock"
    path.write_text(f"{os.getpid()}\n")
    fd = _held(path, fcntl.LOCK_EX)
    try:
        assert lock_owner(path) == (os.getpid(), "")
        path.write_text(f"{_dead_pid()}\n")  # a dead one's, the new one not written yet
        assert lock_owner(path) == (-1, "")
    finally:
        os.close(fd)
