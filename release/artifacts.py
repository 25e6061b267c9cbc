"""The artifacts: wheel and sdist, the one-file executable, the zipapp.

Everything is built from an export of the checkout's files (what a clean clone holds,
plus uncommitted changes to them, which mark the commit `-dirty`), with the commit's
time as SOURCE_DATE_EPOCH and the dependencies from the hash-pinned `requirements.txt`,
installed offline from one wheelhouse.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
import sys
from pathlib import Path

from common import HERE, ZIPAPP_PYTHONS, Layout, ReleaseError, Source, log, platform_args, run


def pip(layout: Layout) -> list[str]:
    return [str(layout.tools_python), "-m", "pip"]


def export(layout: Layout, src: Source, root: Path) -> Path:
    """Copy the checkout's files (tracked, or new and not ignored) to a clean tree."""
    listing = run(
        ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture=True,
        quiet=True,
    )
    tree = layout.build / "source"
    shutil.rmtree(tree, ignore_errors=True)
    for name in sorted(filter(None, listing.split("\0"))):
        origin = root / name
        if not origin.is_file() or origin.is_symlink():
            continue  # deleted in the working tree, or a link: not part of a clean clone
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
        executable = origin.stat().st_mode & stat.S_IXUSR
        target.chmod(0o755 if executable else 0o644)
    for path in [tree, *tree.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (src.epoch, src.epoch))
    return tree


def wheel_and_sdist(layout: Layout, src: Source, tree: Path) -> None:
    """`python -m build`: the sdist, then the wheel built from that sdist."""
    run(
        [layout.tools_python, "-m", "build", "--no-isolation", "--outdir", layout.dist, tree],
        env=src.env(),
        quiet=True,
    )
    for artifact in (layout.wheel, layout.sdist):
        if not artifact.is_file():
            raise ReleaseError(f"the build made no {artifact.name}")
        log(f"built {artifact.name}")


def wheelhouse(layout: Layout, src: Source) -> None:
    """Every pinned wheel, for each Python the zipapp serves (hash-checked)."""
    for version in ZIPAPP_PYTHONS:
        run(
            [
                *pip(layout),
                "download",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                version,
                "--implementation",
                "cp",
                *platform_args(),
                "--dest",
                layout.wheelhouse,
                "-r",
                HERE / "requirements.txt",
            ],
            env=src.env(),
            quiet=True,
        )


def install(
    layout: Layout,
    src: Source,
    *,
    python: Path | None = None,
    target: Path | None = None,
    version: str | None = None,
) -> None:
    """Install the pinned dependencies and the wheel, offline, from the wheelhouse: into
    the venv of `python`, or into the folder `target` for CPython `version`."""
    argv = [*pip(layout)]
    if python is not None:
        argv += ["--python", str(python)]
    argv += [
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        str(layout.wheelhouse),
        "--no-deps",
        "--no-compile",
    ]
    if target is not None:
        argv += ["--target", str(target)]
    if version is not None:
        argv += ["--python-version", version, "--implementation", "cp", *platform_args()]
        argv.append("--only-binary=:all:")
    run([*argv, "--require-hashes", "-r", HERE / "requirements.txt"], env=src.env(), quiet=True)
    run([*argv, layout.wheel], env=src.env(), quiet=True)


def normalise(site: Path) -> None:
    """Drop what says where the install ran rather than what it holds: console scripts
    (their first line names the installing Python), the record of where a wheel came
    from (direct_url.json), and the RECORD lines about them."""
    scripts = site / "bin"
    if scripts.is_dir():
        shutil.rmtree(scripts)
    for info in site.glob("*.dist-info"):
        (info / "direct_url.json").unlink(missing_ok=True)
        record = info / "RECORD"
        if not record.is_file():
            continue
        kept = [
            line
            for line in record.read_text(encoding="utf-8").splitlines()
            if not line.startswith(("../", "bin/"))
            and not line.split(",")[0].endswith("/direct_url.json")
        ]
        record.write_text("\n".join(kept) + "\n", encoding="utf-8")


def bundle(layout: Layout, src: Source) -> Path:
    """A venv of the host's Python with exactly what the one-file executable carries."""
    venv = layout.build / "bundle"
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", "--without-pip", venv], quiet=True)
    install(layout, src, python=venv / "bin" / "python")
    site = site_packages(venv)
    normalise(site)
    return site


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if len(found) != 1:
        raise ReleaseError(f"{venv}: expected one site-packages, found {len(found)}")
    return found[0]


def _top_levels(folder: Path) -> set[str]:
    names = set()
    for entry in folder.iterdir():
        if entry.name.endswith((".dist-info", ".libs", ".pth", ".data")):
            continue
        name = entry.name.split(".")[0] if entry.is_file() else entry.name
        if name.isidentifier():
            names.add(name)
    return names


def onefile(layout: Layout, src: Source, bundled: Path) -> Path:
    """PyInstaller one-file executable of the bundle: no Python needed on the target."""
    work = layout.build / "onefile"
    shutil.rmtree(work, ignore_errors=True)
    # the build tools share the interpreter: keep their modules out of the executable
    tools = site_packages(layout.tools)
    excluded = sorted(_top_levels(tools) - _top_levels(bundled))
    name = layout.onefile.name
    argv: list[str | Path] = [
        layout.tools_python,
        "-m",
        "PyInstaller",
        "--onefile",
        "--strip",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--name",
        name,
        "--distpath",
        work / "dist",
        "--workpath",
        work / "work",
        "--specpath",
        work,
        "--paths",
        bundled,
        "--collect-all",
        "corral",
        "--recursive-copy-metadata",
        "corral",
        "--collect-data",
        "genai_prices",
        "--hidden-import",
        "psycopg",
        *(
            arg
            for extra in ("gordon-to-regorus", "psycopg", "psycopg-binary")
            for arg in ("--copy-metadata", extra)
        ),
        *(arg for module in excluded for arg in ("--exclude-module", module)),
        # uvicorn (the server extra) imports its protocols and loops by name
        *(["--collect-submodules", "uvicorn"] if (bundled / "uvicorn").is_dir() else []),
        HERE / "entry.py",
    ]
    env = src.env()
    env["PYTHONPATH"] = str(bundled)
    run(argv, env=env, quiet=True)
    shutil.copy2(work / "dist" / name, layout.onefile)
    layout.onefile.chmod(0o755)
    log(f"built {layout.onefile.name} ({layout.onefile.stat().st_size / 1e6:.1f} MB)")
    return work / "work" / name


def zipapp(layout: Layout, src: Source) -> Path:
    """A shiv zipapp carrying native wheels for each supported CPython, side by side."""
    work = layout.build / "zipapp"
    shutil.rmtree(work, ignore_errors=True)
    merged = work / "site-packages"
    for version in ZIPAPP_PYTHONS:
        target = work / version
        install(layout, src, target=target, version=version)
        normalise(target)
        _merge(target, merged)
    preamble = work / "preamble.py"
    text = (HERE / "preamble.py").read_text(encoding="utf-8")
    preamble.write_text(text.replace("@PYTHONS@", " ".join(ZIPAPP_PYTHONS)), encoding="utf-8")
    run(
        [
            layout.tools_python,
            "-m",
            "shiv",
            "--site-packages",
            merged,
            "--entry-point",
            "corral.cli.main:main",
            "--output-file",
            layout.zipapp,
            "--python",
            "/usr/bin/env python3",
            "--reproducible",
            "--no-modify",
            "--preamble",
            preamble,
        ],
        env=src.env(),
        quiet=True,
    )
    log(f"built {layout.zipapp.name} ({layout.zipapp.stat().st_size / 1e6:.1f} MB)")
    return merged


def _merge(source: Path, into: Path) -> None:
    """Copy one Python's install into the shared tree. Native modules differ by file name
    (`.cpython-312-...so`); any other file must be identical, except the per-install
    records inside `.dist-info` (RECORD, WHEEL, INSTALLER), where the first one stays."""
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(source)
        target = into / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        elif not filecmp.cmp(path, target, shallow=False):
            if relative.parts[0].endswith(".dist-info"):
                continue
            raise ReleaseError(f"zipapp: {relative} differs between Python versions")
