"""corral starts its own supervisor and server workers however it was shipped."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corral import selfexec


def test_a_wheel_or_checkout_runs_the_module_with_dash_m() -> None:
    argv = selfexec.module_argv("corral.execute.supervisor")
    assert argv == [sys.executable, "-m", "corral.execute.supervisor"]


def test_a_one_file_executable_is_asked_with_its_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    argv = selfexec.module_argv("corral.server.worker")
    assert argv == [sys.executable, selfexec.MODULE_FLAG, "corral.server.worker"]


def test_only_corral_entry_points_can_be_started() -> None:
    with pytest.raises(ValueError, match="not one of corral's"):
        selfexec.module_argv("os")
    probe = "from corral.selfexec import run_module_if_asked as r; import sys; r(sys.argv)"
    done = subprocess.run(
        [sys.executable, "-c", probe, selfexec.MODULE_FLAG, "http.server"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "http.server is not one of corral's process entry points" in done.stderr


def test_the_flag_runs_the_module_as_main() -> None:
    probe = "from corral.selfexec import run_module_if_asked as r; import sys; r(sys.argv)"
    done = subprocess.run(
        [sys.executable, "-c", probe, selfexec.MODULE_FLAG, "corral.execute.supervisor"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # the supervisor itself ran (and refused its missing arguments), not the CLI
    assert done.returncode != 0
    assert "Usage: corral" not in done.stdout + done.stderr


def test_the_new_interpreter_imports_this_corral() -> None:
    env = selfexec.module_env({"PYTHONPATH": "/elsewhere"})
    first, rest = env["PYTHONPATH"].split(":", 1)
    import corral

    assert corral.__file__ is not None and corral.__file__.startswith(first)
    assert rest == "/elsewhere"
