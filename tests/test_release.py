"""The release: checksums and signatures that fail loudly, the image's contract, the lock,
and (marked `release`) the whole build smoke-tested from outside the repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "release"
MINISIGN = shutil.which("minisign")
needs_minisign = pytest.mark.skipif(MINISIGN is None, reason="minisign is not installed")


def release(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def minisign_key(folder: Path) -> dict[str, str]:
    """A throwaway key pair without a password (what docs/release.md tells CI to make)."""
    secret, public = folder / "test.key", folder / "test.pub"
    subprocess.run(
        [str(MINISIGN), "-G", "-W", "-s", str(secret), "-p", str(public)],
        check=True,
        capture_output=True,
    )
    return {"CORRAL_MINISIGN_KEY": str(secret), "CORRAL_MINISIGN_PUB": str(public)}


def fake_dist(folder: Path) -> Path:
    dist = folder / "dist"
    dist.mkdir()
    (dist / "corral-0.0.0.pyz").write_bytes(b"zipapp")
    (dist / "corral-0.0.0.pyz.cdx.json").write_text("{}")
    return dist


def seal(dist: Path, key: dict[str, str] | None) -> None:
    """SHA256SUMS and its signature, as the build writes them."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
        "from common import Layout, Source; import sign;"
        "layout = Layout(Path(sys.argv[2]), Path(sys.argv[2]), '0.0.0');"
        "src = Source('abc', 0, '0.0.0', False);"
        "sign.write_sums(layout); sign.sign(layout, src, sign.Key.from_env())"
    )
    env = {**os.environ, **(key if key is not None else {"CORRAL_UNSIGNED": "1"})}
    done = subprocess.run(
        [sys.executable, "-c", code, str(RELEASE), str(dist)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@needs_minisign
def test_verify_fails_on_a_changed_missing_or_unlisted_artifact(tmp_path: Path) -> None:
    key = minisign_key(tmp_path)
    dist = fake_dist(tmp_path)
    seal(dist, key)
    sums = (dist / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ")[1] for line in sums] == [
        "corral-0.0.0.pyz",
        "corral-0.0.0.pyz.cdx.json",
    ]
    assert (dist / "SHA256SUMS.minisig").is_file()
    assert release("--dist", str(dist), "verify", env=key).returncode == 0
    # checking a download needs the public key only
    public_only = {"CORRAL_MINISIGN_KEY": "", "CORRAL_MINISIGN_PUB": key["CORRAL_MINISIGN_PUB"]}
    assert release("--dist", str(dist), "verify", env=public_only).returncode == 0
    no_key = release("--dist", str(dist), "verify", env={"CORRAL_MINISIGN_KEY": ""})
    assert no_key.returncode == 1 and "give its public key in CORRAL_MINISIGN_PUB" in no_key.stderr

    (dist / "corral-0.0.0.pyz").write_bytes(b"zipapp, changed")
    changed = release("--dist", str(dist), "verify", env=key)
    assert changed.returncode == 1
    assert "corral-0.0.0.pyz: checksum does not match SHA256SUMS" in changed.stderr

    seal(dist, key)
    (dist / "extra.bin").write_bytes(b"?")
    assert "extra.bin: not in SHA256SUMS" in release("--dist", str(dist), "verify", env=key).stderr
    (dist / "extra.bin").unlink()
    (dist / "corral-0.0.0.pyz").unlink()
    missing = release("--dist", str(dist), "verify", env=key).stderr
    assert "corral-0.0.0.pyz: listed in SHA256SUMS but missing" in missing


@needs_minisign
def test_verify_fails_on_a_forged_sums_file_or_another_key(tmp_path: Path) -> None:
    key = minisign_key(tmp_path)
    dist = fake_dist(tmp_path)
    seal(dist, key)
    (tmp_path / "other").mkdir()
    other = minisign_key(tmp_path / "other")
    wrong = release("--dist", str(dist), "verify", env=other)
    assert wrong.returncode == 1 and "minisign exited" in wrong.stderr
    # a SHA256SUMS rewritten to match a changed artifact no longer matches its signature
    (dist / "corral-0.0.0.pyz").write_bytes(b"evil")
    rewritten = (dist / "SHA256SUMS").read_text().splitlines()
    digest = subprocess.run(["sha256sum", str(dist / "corral-0.0.0.pyz")], capture_output=True,
                            text=True, check=True).stdout.split()[0]  # fmt: skip
    rewritten[0] = f"{digest}  corral-0.0.0.pyz"
    (dist / "SHA256SUMS").write_text("\n".join(rewritten) + "\n")
    forged = release("--dist", str(dist), "verify", env=key)
    assert forged.returncode == 1 and "minisign exited" in forged.stderr


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")
def test_gpg_signatures_too(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home)}
    try:
        subprocess.run(
            ["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             "corral-test@example.invalid", "ed25519", "sign", "1d"],
            env={**os.environ, **env}, check=True, capture_output=True,
        )  # fmt: skip
        key = {**env, "CORRAL_GPG_KEY": "corral-test@example.invalid"}
        dist = fake_dist(tmp_path)
        seal(dist, key)
        assert (dist / "SHA256SUMS.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
        assert release("--dist", str(dist), "verify", env=key).returncode == 0
        (dist / "SHA256SUMS").write_text((dist / "SHA256SUMS").read_text() + "\n")
        assert release("--dist", str(dist), "verify", env=key).returncode == 1
    finally:  # gpg leaves an agent behind
        subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, **env}, check=False)


def test_no_key_no_release_and_no_signature_no_check(tmp_path: Path) -> None:
    dist = fake_dist(tmp_path)
    nothing = {k: "" for k in ("CORRAL_MINISIGN_KEY", "CORRAL_GPG_KEY", "CORRAL_UNSIGNED")}
    refused = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import sign; "
         "sign.Key.from_env()", str(RELEASE)],
        env={**os.environ, **nothing}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "no signing key: set CORRAL_MINISIGN_KEY" in refused.stderr
    seal(dist, None)  # an unsigned try-out (CORRAL_UNSIGNED=1)
    unsigned = release("--dist", str(dist), "verify", env=nothing)
    assert unsigned.returncode == 1 and "SHA256SUMS is not signed" in unsigned.stderr
    assert release("--dist", str(dist), "verify", env={"CORRAL_UNSIGNED": "1"}).returncode == 0


def test_the_image_runs_as_a_user_serves_and_checks_its_health() -> None:
    text = (RELEASE / "Containerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and line[0].isupper()]
    assert instructions[0] == "FROM" and "scratch" in text.splitlines()[4]
    assert "RUN" not in instructions  # built offline, from the prepared root file system
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert re.search(r'^CMD \["corral", "serve"', text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.MULTILINE)


@pytest.mark.parametrize("carried", ["3.11 3.12 3.13", "3.9 3.10"])
def test_the_zipapp_refuses_a_python_it_carries_no_modules_for(
    tmp_path: Path, carried: str
) -> None:
    preamble = tmp_path / "preamble.py"
    preamble.write_text((RELEASE / "preamble.py").read_text().replace("@PYTHONS@", carried))
    done = subprocess.run(
        [sys.executable, str(preamble)], capture_output=True, text=True, check=False
    )
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here in carried.split():
        assert (done.returncode, done.stderr) == (0, "")
    else:
        assert done.returncode == 2
        assert done.stderr.startswith("corral: error: this zipapp runs on CPython 3.9, 3.10 ")


def test_the_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # every extra the artifacts ship that pyproject.toml defines (`server` with corral serve)
    shipped = [extra for extra in ("policy", "postgres", "server") if extra in extras]
    assert {"policy", "postgres"} <= set(shipped)
    wanted = [*project["dependencies"], *(r for extra in shipped for r in extras[extra])]
    pins = dict(
        re.findall(r"^([a-z0-9-]+)==(\S+)", (RELEASE / "requirements.txt").read_text(), re.M)
    )
    for line in wanted:
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in release/requirements.txt: make release-lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {line}"
    assert "--hash=sha256:" in (RELEASE / "tools.txt").read_text()


@pytest.mark.release
@pytest.mark.slow
@needs_minisign
@pytest.mark.timeout(1500)
def test_build_then_smoke_test_every_artifact(tmp_path: Path, cli_bin: Path) -> None:
    """`make release` and `make release-smoke`, as CI runs them: the wheel (with its
    extras, in a fresh venv), the one-file executable, the zipapp under each CPython
    found: --version, version --verbose, validate, run, history, policy check, a refused
    run, a rehearsal with the real CLIs, each from a temp folder with `env -i`."""
    key = minisign_key(tmp_path)
    dist = tmp_path / "dist"
    build = ROOT / "build" / "release-test"  # kept between runs: the tools venv is reused
    done = release(
        "--dist", str(dist), "--build", str(build), "build", "smoke", "--clis", str(cli_bin),
        env=key, timeout=1400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    version = re.search(r'__version__ = "(.+)"', (ROOT / "src/corral/__init__.py").read_text())
    assert version is not None
    v = version.group(1)
    names = sorted(p.name for p in dist.iterdir())
    artifacts = [f"corral-{v}-linux-x86_64", f"corral-{v}-py3-none-any.whl", f"corral-{v}.pyz",
                 f"corral-{v}.tar.gz"]  # fmt: skip
    assert names == sorted(
        [*artifacts, *(a + ".cdx.json" for a in artifacts), "SHA256SUMS", "SHA256SUMS.minisig"]
    )
    subprocess.run(
        [str(MINISIGN), "-V", "-p", key["CORRAL_MINISIGN_PUB"], "-m", str(dist / "SHA256SUMS")],
        check=True,
        capture_output=True,
    )
    onefile = json.loads((dist / f"corral-{v}-linux-x86_64.cdx.json").read_text())
    purls = {c["purl"].split("@")[0] for c in onefile["components"]}
    assert {"pkg:pypi/corral", "pkg:pypi/gordon-to-regorus", "pkg:generic/cpython",
            "pkg:pypi/pyinstaller", "pkg:deb/debian/libssl3"} <= purls  # fmt: skip
    assert onefile["metadata"]["component"]["properties"][0] == {
        "name": "corral:artifact",
        "value": "onefile",
    }
    zipapp = json.loads((dist / f"corral-{v}.pyz.cdx.json").read_text())
    assert "pkg:pypi/shiv" in {c["purl"].split("@")[0] for c in zipapp["components"]}
    wheel = json.loads((dist / f"corral-{v}-py3-none-any.whl.cdx.json").read_text())
    assert [c["name"] for c in wheel["components"]] == ["corral"]
    report = json.loads((build / "report.json").read_text())
    assert {"wheel", "onefile", "zipapp-3.11"} <= set(report["start_seconds"])
