"""`corral version`: what a bug report needs, and how each artifact is recognised.
(The built artifacts themselves are checked by tests/test_release.py.)"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from corral import __version__, buildinfo
from helpers import corral


def test_plain_verbose_and_json(tmp_path: Path) -> None:
    plain = corral("version", cwd=tmp_path)
    assert (plain.returncode, plain.stdout) == (0, f"corral {__version__}\n")
    verbose = corral("version", "--verbose", cwd=tmp_path)
    keys = [line.split(":", 1)[0] for line in verbose.stdout.splitlines()]
    assert keys[:8] == [
        "corral",
        "commit",
        "built",
        "artifact",
        "python",
        "platform",
        "executable",
        "dependencies",
    ]
    assert "artifact:     source" in verbose.stdout  # the test suite runs an editable install
    assert "pydantic " in verbose.stdout and "gordon-to-regorus 0.13.0" in verbose.stdout
    document = json.loads(corral("version", "--json", cwd=tmp_path).stdout)
    assert set(document) == {
        "schema_version",
        "version",
        "commit",
        "build_date",
        "artifact",
        "python",
        "platform",
        "executable",
        "dependencies",
    }
    assert document["python"] == f"CPython {sys.version.split()[0]}"
    assert document["dependencies"]["click"]  # a version, not None


def test_source_checkout_reports_its_git_commit(tmp_path: Path) -> None:
    info = buildinfo.build_info()
    assert info.kind == "source"
    assert info.commit is not None and len(info.commit.removesuffix("-dirty")) == 40


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.delitem(sys.modules, "_bootstrap", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(buildinfo, "BUILD_FILE", tmp_path / "_build.json")
    return tmp_path


def test_wheel_onefile_zipapp_container(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert buildinfo.artifact_kind() == "source"
    (clean / "_build.json").write_text('{"commit": "abc123", "date": "2026-01-02T03:04:05Z"}')
    assert buildinfo.artifact_kind() == "wheel"
    info = buildinfo.build_info()
    assert (info.commit, info.build_date) == ("abc123", "2026-01-02T03:04:05Z")

    shiv = types.ModuleType("_bootstrap")
    shiv.current_zipfile = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_bootstrap", shiv)
    assert buildinfo.artifact_kind() == "zipapp"

    marker = clean / "prefix" / "share" / "corral" / "artifact"
    marker.parent.mkdir(parents=True)
    marker.write_text("container\n")
    assert buildinfo.artifact_kind() == "container"

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert buildinfo.artifact_kind() == "onefile"


def test_a_damaged_build_file_is_ignored(clean: Path) -> None:
    (clean / "_build.json").write_text("not json")
    assert buildinfo.recorded() == {}
