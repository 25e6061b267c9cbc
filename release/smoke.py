"""Smoke-test each built artifact from a folder outside the repository, in a clean
environment (`env -i`: a fresh HOME, PATH with only the system and, for the rehearsal,
the agent CLIs and node).

Each artifact must: print its version; say in `version --verbose` which artifact it is
and which commit it was built from; validate and run examples/hello.yaml (and list the
run in its history); check it against the example policies and refuse a flow they deny
(leaving only the refusal in the history); rehearse examples/rehearse.yaml with the real
CLIs against the simulated provider.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import ROOT, ZIPAPP_PYTHONS, Layout, ReleaseError, Source, log, run, shipped_extras

DENIED_FLOW = """\
version: 1
name: denied
jobs:
  unsafe:
    run: touch should-not-exist
    shell: true
"""


@dataclass
class Subject:
    """One way of starting corral from a built artifact."""

    name: str
    kind: str  # what `version --verbose` must report
    command: list[str]
    rehearse: bool = True
    timings: list[float] = field(default_factory=list)


def _clean_env(home: Path, clis: Path | None) -> dict[str, str]:
    path = ["/usr/local/bin", "/usr/bin", "/bin"]
    if clis is not None:
        node = shutil.which("node")
        path = [str(clis), *([str(Path(node).parent)] if node else []), *path]
    return {"HOME": str(home), "PATH": os.pathsep.join(path), "LANG": "C.UTF-8"}


def _call(
    subject: Subject, args: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*subject.command, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _expect(
    subject: Subject,
    args: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    code: int = 0,
    contains: str = "",
) -> str:
    done = _call(subject, args, env, cwd)
    output = done.stdout + done.stderr
    if done.returncode != code or contains not in output:
        raise ReleaseError(
            f"smoke {subject.name}: `corral {' '.join(args)}` exited {done.returncode} "
            f"(expected {code}{f', with {contains!r}' if contains else ''}):\n{output[-3000:]}"
        )
    return output


def check(subject: Subject, src: Source, version: str, work: Path, clis: Path | None) -> None:
    folder = work / subject.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("hello.yaml", "rehearse.yaml"):
        shutil.copy(ROOT / "examples" / name, folder / name)
    shutil.copytree(ROOT / "examples" / "policies", folder / "policies")
    (folder / "denied.yaml").write_text(DENIED_FLOW, encoding="utf-8")
    home = folder / "home"
    home.mkdir()
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)  # the container's user writes here
    env = _clean_env(home, clis)

    started = time.perf_counter()
    _expect(subject, ["--version"], env, folder, contains=version)
    subject.timings.append(time.perf_counter() - started)
    about = json.loads(_expect(subject, ["version", "--json"], env, folder))
    if about["artifact"] != subject.kind or about["commit"] != src.commit:
        raise ReleaseError(f"smoke {subject.name}: version --json says {about}")
    _expect(
        subject, ["version", "--verbose"], env, folder, contains=f"artifact:     {subject.kind}"
    )
    _expect(subject, ["validate", "hello.yaml"], env, folder, contains="ok (5 jobs")
    _expect(
        subject, ["run", "hello.yaml", "--output", "prefixed"], env, folder, contains="succeeded"
    )
    _expect(subject, ["runs"], env, folder, contains="succeeded")
    _expect(
        subject,
        ["policy", "check", "hello.yaml", "--policy", "policies"],
        env,
        folder,
        contains="allowed",
    )
    _expect(
        subject,
        ["run", "denied.yaml", "--policy", "policies"],
        env,
        folder,
        code=2,
        contains="deny_shell",
    )
    if (folder / "should-not-exist").exists():
        raise ReleaseError(f"smoke {subject.name}: a refused flow ran")
    _expect(subject, ["runs", "--status", "refused"], env, folder, contains="refused")
    if subject.rehearse:
        if clis is None:
            raise ReleaseError("smoke: no agent CLIs for the rehearsal (give --clis DIR)")
        _expect(
            subject,
            ["rehearse", "rehearse.yaml", "--output", "prefixed"],
            env,
            folder,
            contains="succeeded",
        )
    log(f"smoke {subject.name}: ok")


def interpreter(version: str) -> str | None:
    """A CPython `version` on this machine (on PATH, or installed by pyenv), or None."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        map(str, Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    )
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip():
            return probe.stdout.strip()
    return None


def subjects(layout: Layout, work: Path, container: bool) -> list[Subject]:
    found: list[Subject] = []
    if layout.wheel.is_file():
        venv = work / "wheel-venv"
        shutil.rmtree(venv, ignore_errors=True)
        run(["python3", "-m", "venv", venv], quiet=True)
        extras = f"{layout.wheel}[{','.join(shipped_extras())}]"
        run(
            [
                venv / "bin" / "pip",
                "install",
                "--quiet",
                "--no-index",
                "--find-links",
                layout.wheelhouse,
                extras,
            ],
            quiet=True,
        )
        found.append(Subject("wheel", "wheel", [str(venv / "bin" / "corral")]))
    if layout.onefile.is_file():
        binary = work / "bin" / layout.onefile.name
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(layout.onefile, binary)
        found.append(Subject("onefile", "onefile", [str(binary)]))
    if layout.zipapp.is_file():
        for index, version in enumerate(ZIPAPP_PYTHONS):
            python = interpreter(version)
            if python is None:
                log(f"smoke: no python{version} here: the zipapp is not tried with it")
                continue
            # a rehearsal with the first Python proves the CLIs path; the others run the rest
            found.append(
                Subject(
                    f"zipapp-{version}", "zipapp", [python, str(layout.zipapp)], rehearse=index == 0
                )
            )
    if layout.container.is_file() and container:
        image = f"localhost/corral:{layout.version}"
        run(["podman", "load", "--quiet", "--input", layout.container], quiet=True)
        # no network needed; this machine's runc may not raise limits: modest ones; no
        # systemd here for the health check's timer
        podman = ["podman", "run", "--rm", "--network", "none", "--runtime", "runc"]
        podman += ["--cgroup-manager=cgroupfs"]
        podman += ["--ulimit", "nofile=8192:8192", "--ulimit", "nproc=8192:8192"]
        podman += ["--no-healthcheck", "--volume", f"{work / 'container'}:/work", image, "corral"]
        # the image carries no agent CLIs: no rehearsal inside it
        found.append(Subject("container", "container", podman, rehearse=False))
    return found


def main(
    layout: Layout, src: Source, clis: Path | None, container: bool = False
) -> dict[str, float]:
    """Smoke-test every artifact in dist/; returns the median `--version` time of each."""
    with tempfile.TemporaryDirectory(prefix="corral-smoke-") as scratch:
        work = Path(scratch)
        if work.resolve().is_relative_to(ROOT):
            raise ReleaseError("smoke: the scratch folder must be outside the repository")
        tried = subjects(layout, work, container)
        if not tried:
            raise ReleaseError(f"smoke: nothing to try in {layout.dist}")
        for subject in tried:
            check(subject, src, layout.version, work, clis)
            home = work / subject.name / "home"
            for _ in range(4):
                started = time.perf_counter()
                _expect(subject, ["--version"], _clean_env(home, None), work / subject.name)
                subject.timings.append(time.perf_counter() - started)
        return {s.name: statistics.median(s.timings) for s in tried}
