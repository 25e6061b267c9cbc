"""SHA256SUMS over everything in dist/, a detached signature of it, and the check.

The key is given to the build, never stored with it:

    CORRAL_MINISIGN_KEY=path/minisign.key     minisign secret key (`minisign -G`);
    CORRAL_MINISIGN_PUB=path/minisign.pub     its public key (default: the .key's .pub)
    CORRAL_MINISIGN_PASSWORD=...              its password, when it has one
or
    CORRAL_GPG_KEY=FINGERPRINT                a key in the GPG keyring (`gpg --detach-sign`)

CORRAL_UNSIGNED=1 builds without a signature (for a local try-out only). minisign's
signatures are reproducible (the trusted comment is fixed: version and commit);
GPG's carry the signing time.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from common import Layout, ReleaseError, Source, log, run, sha256

SUMS = "SHA256SUMS"
SIGNATURES = (f"{SUMS}.minisig", f"{SUMS}.asc")


@dataclass(frozen=True)
class Key:
    kind: str  # "minisign" | "gpg"
    secret: str | None  # a path (minisign) or a fingerprint (gpg); None: check only
    public: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, *, signing: bool = True) -> Key | None:
        """The key the environment names; for checking only, a public key is enough."""
        env = os.environ
        if env.get("CORRAL_MINISIGN_KEY") or (not signing and env.get("CORRAL_MINISIGN_PUB")):
            secret = env.get("CORRAL_MINISIGN_KEY") or None
            public = env.get("CORRAL_MINISIGN_PUB") or (
                str(Path(secret).with_suffix(".pub")) if secret else None
            )
            return cls("minisign", secret, public, env.get("CORRAL_MINISIGN_PASSWORD"))
        if env.get("CORRAL_GPG_KEY"):
            return cls("gpg", env["CORRAL_GPG_KEY"])
        if env.get("CORRAL_UNSIGNED") == "1" or not signing:
            return None
        raise ReleaseError(
            "no signing key: set CORRAL_MINISIGN_KEY (and CORRAL_MINISIGN_PUB) or CORRAL_GPG_KEY,"
            " or CORRAL_UNSIGNED=1 for an unsigned local build (docs/release.md: creating a key)"
        )


def artifacts(dist: Path) -> list[Path]:
    """What SHA256SUMS covers: every file in dist/ but the sums and their signatures."""
    return sorted(p for p in dist.iterdir() if p.is_file() and p.name not in (SUMS, *SIGNATURES))


def write_sums(layout: Layout) -> Path:
    path = layout.dist / SUMS
    lines = [f"{sha256(p)}  {p.name}\n" for p in artifacts(layout.dist)]
    path.write_text("".join(lines), encoding="utf-8")
    for name in SIGNATURES:
        (layout.dist / name).unlink(missing_ok=True)
    log(f"wrote {SUMS} ({len(lines)} files)")
    return path


def sign(layout: Layout, src: Source, key: Key | None) -> Path | None:
    sums = layout.dist / SUMS
    if key is None:
        log(f"{SUMS} left unsigned (CORRAL_UNSIGNED=1)")
        return None
    if key.secret is None:
        raise ReleaseError("a public key cannot sign: set CORRAL_MINISIGN_KEY")
    if key.kind == "minisign":
        signature = layout.dist / SIGNATURES[0]
        argv: list[str | Path] = ["minisign", "-S", "-s", key.secret, "-m", sums, "-x", signature]
        argv += ["-t", f"corral {layout.version} commit {src.commit}", "-c", "corral release"]
        _run_with_password(argv, key.password)
    else:
        signature = layout.dist / SIGNATURES[1]
        gpg = ["gpg", "--batch", "--yes", "--local-user", key.secret, "--armor"]
        run([*gpg, "--detach-sign", "--output", signature, sums], quiet=True)
    log(f"signed {SUMS} ({signature.name})")
    return signature


def _run_with_password(argv: list[str | Path], password: str | None) -> None:
    result = subprocess.run(
        [str(a) for a in argv],
        input=(password + "\n") if password else "",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ReleaseError(f"minisign could not sign: {(result.stderr or result.stdout).strip()}")


def verify(dist: Path, key: Key | None) -> None:
    """Every listed file has its checksum, nothing unlisted is shipped, the signature
    holds. ReleaseError (the build fails) otherwise."""
    sums = dist / SUMS
    if not sums.is_file():
        raise ReleaseError(f"{sums}: missing")
    listed: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = []
    for name, digest in listed.items():
        path = dist / name
        if not path.is_file():
            problems.append(f"{name}: listed in {SUMS} but missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: checksum does not match {SUMS}")
    problems += [f"{p.name}: not in {SUMS}" for p in artifacts(dist) if p.name not in listed]
    if problems:
        raise ReleaseError("checksums do not verify:\n  " + "\n  ".join(problems))
    minisig, asc = (dist / name for name in SIGNATURES)
    if minisig.is_file():
        public = key.public if key is not None and key.kind == "minisign" else None
        if public is None or not Path(public).is_file():
            raise ReleaseError(
                f"cannot check {minisig.name}: give its public key in CORRAL_MINISIGN_PUB"
                + (f" ({public} does not exist)" if public else "")
            )
        run(["minisign", "-V", "-q", "-p", public, "-m", sums, "-x", minisig], quiet=True)
    elif asc.is_file():
        run(["gpg", "--batch", "--verify", asc, sums], quiet=True)
    elif os.environ.get("CORRAL_UNSIGNED") != "1":
        raise ReleaseError(f"{sums.name} is not signed (CORRAL_UNSIGNED=1 accepts that)")
    signed = minisig.is_file() or asc.is_file()
    log(f"verified {len(listed)} checksums" + (" and the signature" if signed else ""))
