"""Build, sign, check and smoke-test corral's release artifacts (docs/release.md).

    python3 release [--dist DIR] [--build DIR] [STEP ...]

    build       (default) wheel + sdist, one-file executable, zipapp, their SBOMs,
                SHA256SUMS and its signature, then verify them
    container   the container image and its SBOM (needs root, buildah, debootstrap;
                after `build`), then the sums, signature and check again
    verify      check dist/ against SHA256SUMS and its signature
    smoke       run each artifact from a folder outside the repository (--clis DIR:
                the agent CLIs for the rehearsal)
    lock        regenerate release/requirements.txt and release/tools.txt
    repro       build twice from two clean clones and compare every checksum

The build tools live in a venv under the build folder, installed from the hash-pinned
release/tools.txt; this script re-runs itself there. Timings and sizes go to
BUILD/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import artifacts  # the release folder is put on sys.path first
import sbom
import sign
from common import HERE, ROOT, Layout, ReleaseError, Source, log, run, sha256, source

STEPS = ("build", "container", "verify", "smoke", "lock", "repro")
_IN_TOOLS = "CORRAL_RELEASE_IN_TOOLS"


def ensure_tools(layout: Layout) -> None:
    """The tools venv, (re)made when release/tools.txt changed."""
    stamp = layout.tools / ".tools-sha256"
    wanted = sha256(HERE / "tools.txt")
    if stamp.is_file() and stamp.read_text().strip() == wanted and layout.tools_python.exists():
        return
    log("installing the build tools (release/tools.txt)")
    shutil.rmtree(layout.tools, ignore_errors=True)
    run([sys.executable, "-m", "venv", layout.tools], quiet=True)
    pip: list[str | Path] = [layout.tools_python, "-m", "pip", "install", "--quiet"]
    pip.append("--require-hashes")
    run([*pip, "--no-deps", "-r", HERE / "tools.txt"], quiet=True)
    stamp.write_text(wanted + "\n")


def timed(report: dict[str, float], name: str, step: Callable[[], object]) -> object:
    started = time.monotonic()
    result = step()
    report[name] = round(time.monotonic() - started, 1)
    return result


def build(layout: Layout) -> dict[str, object]:
    src = source(ROOT)
    if src.dirty:
        log("warning: uncommitted changes: the artifacts say so (commit ends in -dirty)")
    layout.dist.mkdir(parents=True, exist_ok=True)
    for old in layout.dist.iterdir():
        if old.is_file() and (old.name.startswith("corral-") or old.name.startswith("SHA256SUMS")):
            old.unlink()
    key = sign.Key.from_env()
    times: dict[str, float] = {}
    tree = timed(times, "export", lambda: artifacts.export(layout, src, ROOT))
    timed(times, "wheel+sdist", lambda: artifacts.wheel_and_sdist(layout, src, Path(str(tree))))
    timed(times, "wheelhouse", lambda: artifacts.wheelhouse(layout, src))
    bundled = Path(str(timed(times, "bundle", lambda: artifacts.bundle(layout, src))))
    work = Path(str(timed(times, "onefile", lambda: artifacts.onefile(layout, src, bundled))))
    site = Path(str(timed(times, "zipapp", lambda: artifacts.zipapp(layout, src))))

    def sboms() -> None:
        only = sbom.corral_only(layout)
        sbom.write(layout, src, layout.wheel, "wheel", only)
        sbom.write(layout, src, layout.sdist, "sdist", only)
        sbom.write(layout, src, layout.onefile, "onefile", sbom.onefile_components(work, bundled))
        sbom.write(layout, src, layout.zipapp, "zipapp", sbom.zipapp_components(site))

    timed(times, "sbom", sboms)
    timed(times, "sums+sign+verify", lambda: seal(layout, src, key))
    return {"seconds": times, "sizes": sizes(layout)}


def seal(layout: Layout, src: Source, key: sign.Key | None) -> None:
    sign.write_sums(layout)
    sign.sign(layout, src, key)
    sign.verify(layout.dist, key)


def container(layout: Layout) -> dict[str, object]:
    import container as image

    src = source(ROOT)
    key = sign.Key.from_env()
    times: dict[str, float] = {}
    rootfs = Path(str(timed(times, "container", lambda: image.build(layout, src))))
    site = next((rootfs / "opt" / "corral" / "lib").glob("python3.*/site-packages"))
    components = [d.component() for d in sbom.dists(site)]
    components += sbom.deb_components(image.debian_packages(rootfs))
    sbom.write(layout, src, layout.container, "container", components)
    timed(times, "sums+sign+verify", lambda: seal(layout, src, key))
    return {"seconds": times, "sizes": sizes(layout)}


def sizes(layout: Layout) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(layout.dist.iterdir()) if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(prog="release", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "steps", nargs="*", default=["build"], metavar="STEP", help=" | ".join(STEPS)
    )
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "release")
    parser.add_argument("--clis", type=Path, default=None, help="agent CLIs for the rehearsal")
    parser.add_argument(
        "--container", action="store_true", help="smoke: also run the image (needs podman)"
    )
    args = parser.parse_args()
    unknown = [step for step in args.steps if step not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}: choose from {', '.join(STEPS)}")
    version = source(ROOT).version
    layout = Layout(args.dist.resolve(), args.build.resolve(), version)
    try:
        if "lock" in args.steps:
            import lock

            lock.main()
            return 0
        if "repro" in args.steps:
            import repro

            verdict = repro.main(args.container)
            print(json.dumps(verdict, indent=2))
            return 0 if all(verdict.values()) else 1
        needs_tools = {"build", "container"} & set(args.steps)
        if needs_tools and os.environ.get(_IN_TOOLS) != "1":
            layout.build.mkdir(parents=True, exist_ok=True)
            ensure_tools(layout)
            env = {**os.environ, _IN_TOOLS: "1"}
            argv = [str(layout.tools_python), str(HERE), *sys.argv[1:]]
            return subprocess.run(argv, env=env, check=False).returncode
        report: dict[str, object] = {}
        for step in args.steps:
            if step == "build":
                report["build"] = build(layout)
            elif step == "container":
                report["container"] = container(layout)
            elif step == "verify":
                sign.verify(layout.dist, sign.Key.from_env(signing=False))
            elif step == "smoke":
                import smoke

                report["start_seconds"] = smoke.main(
                    layout, source(ROOT), args.clis, args.container
                )
        if report:
            (layout.build / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(report, indent=2))
    except ReleaseError as error:
        print(f"release: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
