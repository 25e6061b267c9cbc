"""The cache of dataclasses' compiled methods (`corral.classcache`): a class made through
it is the class `dataclasses` makes without it (the same code objects), the cache is read
only from a private file of the user's, and a command that finds it current compiles
nothing."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from corral import classcache


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private XDG cache; the hook removed again after the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    classcache.uninstall()
    yield tmp_path / "cache" / "corral" / "classes"
    classcache.uninstall()


def define() -> list[type]:
    """Dataclasses of every kind corral defines: frozen, slotted, keyword-only, ordered,
    with defaults and factories, inheriting."""

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Base:
        at: float
        note: str | None = None

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Child(Base):
        cost: Decimal = Decimal(0)
        tags: tuple[str, ...] = ()

    @dataclasses.dataclass(order=True)
    class Loose:
        name: str
        items: list[int] = dataclasses.field(default_factory=list)
        hidden: int = dataclasses.field(default=0, repr=False, compare=False)

    @dataclasses.dataclass(frozen=True, eq=True, unsafe_hash=True)
    class Hashed:
        key: str
        extra: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    return [Base, Child, Loose, Hashed]


METHODS = ("__init__", "__repr__", "__eq__", "__lt__", "__hash__", "__setattr__", "__delattr__")


def codes(classes: list[type]) -> list[Any]:
    found = []
    for cls in classes:
        for name in METHODS:
            method = cls.__dict__.get(name)
            code = getattr(method, "__code__", None)
            found.append((cls.__name__, name, code, getattr(method, "__annotations__", None)))
    return found


def test_classes_made_through_the_cache_are_the_classes_dataclasses_makes(home: Path) -> None:
    plain = define()
    cache = classcache.install("test")
    assert cache is not None
    first = define()  # compiled, kept
    assert cache.compiled > 0
    classcache.uninstall()
    cache.save()
    cached = classcache.install("test")
    assert cached is not None
    again = define()  # from the file
    assert cached.compiled == 0 and cached.used
    # the same code (bytecode, constants, names, flags: no __future__ flag leaked in, so
    # __init__'s annotations are the types, not strings) and the same annotations
    assert codes(plain) == codes(first) == codes(again)
    assert any(code is not None for _, _, code, _ in codes(again))
    Base, Child, Loose, Hashed = again
    child = Child(at=1.5, cost=Decimal("0.25"))
    twin = Child(at=1.5, cost=Decimal("0.25"))
    assert child == twin and hash(child) == hash(twin) and child != Base(at=1.5)
    assert repr(child).endswith("Child(at=1.5, note=None, cost=Decimal('0.25'), tags=())")
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.at = 2.0  # type: ignore[misc]
    assert not hasattr(child, "__dict__")  # slotted
    with pytest.raises(TypeError):
        Child(1.5)  # type: ignore[misc] # keyword-only
    assert Loose("a") < Loose("b") and Loose("a", [1]).items == [1] and Loose("a").items == []
    assert Loose("a", hidden=1) == Loose("a", hidden=2) and "hidden" not in repr(Loose("a"))
    assert hash(Hashed("k", {"x": 1})) == hash(Hashed("k"))


def test_the_cache_is_private_and_only_a_private_whole_file_is_trusted(home: Path) -> None:
    cache = classcache.install("test")
    assert cache is not None
    define()
    classcache.uninstall()
    cache.save()
    (path,) = home.iterdir()
    assert os.stat(home).st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o777 == 0o600
    good = path.read_bytes()

    def reinstalled() -> classcache._Cache:
        classcache.uninstall()
        found = classcache.install("test")
        assert found is not None
        return found

    def loaded() -> int:
        return len(reinstalled().codes)

    assert loaded() > 0
    os.chmod(path, 0o644)  # another user could have written it
    assert loaded() == 0
    os.chmod(path, 0o600)
    os.chmod(home, 0o755)
    assert loaded() == 0
    os.chmod(home, 0o700)
    for bad in (good[: len(good) // 2], b"junk", marshal.dumps((classcache.FORMAT, {"a": 1}))):
        path.write_bytes(bad)
        assert loaded() == 0
    path.write_bytes(marshal.dumps((classcache.FORMAT + 1, {})))
    assert loaded() == 0
    # a file it did not trust is written again, whole, once something is compiled
    found = reinstalled()
    define()
    classcache.uninstall()
    found.save()
    assert loaded() > 0


def test_not_installed_over_another_hook(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataclasses, "exec", exec, raising=False)
    assert classcache.install("test") is None
    monkeypatch.delattr(dataclasses, "exec")
    monkeypatch.delattr(dataclasses, "_create_fn")  # a dataclasses that compiles otherwise
    assert classcache.install("test") is None


def test_a_file_past_the_limit_keeps_what_this_process_used(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(classcache, "LIMIT", 0)
    cache = classcache.install("test")
    assert cache is not None
    cache.codes["def stale(): pass"] = compile("def stale(): pass", "<string>", "exec")
    define()
    classcache.uninstall()
    cache.save()
    again = classcache.install("test")
    assert again is not None
    assert "def stale(): pass" not in again.codes and set(again.codes) == cache.used


def test_a_command_with_a_current_cache_compiles_no_dataclass_method(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [sys.executable, "-m", "corral", "exec", "-q", "--no-store", "--", "true"]

    def files() -> dict[str, int]:
        folder = tmp_path / "cache" / "corral" / "classes"
        return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    for _ in range(2):
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        if _ == 0:
            written = files()
            assert len(written) == 1
    assert files() == written  # nothing compiled: not written again


def test_an_unusable_cache_folder_only_costs_the_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # not a folder
    classcache.uninstall()
    try:
        cache = classcache.install("test")
        assert cache is not None and not cache.codes
        Base, *_ = define()
        assert Base(at=1.0).at == 1.0
        cache.save()  # nowhere to write: no error
        assert (tmp_path / "file").read_text() == ""
    finally:
        classcache.uninstall()


def test_a_server_worker_keeps_its_own_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A served run's worker is not started through the CLI's command loader: it installs
    the cache itself, under its own name."""
    from corral.server.worker import WorkOrder

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    order = WorkOrder(
        run_id="20261203-000000-classcacheworker",
        owner="tester",
        base_dir=str(tmp_path),
        store=None,
        flow="jobs:\n  one:\n    run: ['true']\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "corral.server.worker"],
        input=order.encode(),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    written = [p.name for p in (tmp_path / "cache" / "corral" / "classes").iterdir()]
    assert written == [Path(classcache.cache_path("worker")).name]
