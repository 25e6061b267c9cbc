"""The container image, built offline: no image registry is involved.

1. debootstrap makes a minimal Debian root file system (python3, ca-certificates),
   from the host's Debian mirrors (CORRAL_DEBIAN_MIRROR / CORRAL_DEBIAN_SECURITY_MIRROR
   override them; a snapshot mirror pins every package version), and brings it up to
   date with the security suite.
2. corral goes into /opt/corral, a venv of Debian's Python, installed offline from the
   release's wheelhouse with the hash-pinned requirements (bytecode compiled with hash
   checks, so no timestamp is baked in); a `corral` user (uid 10001) owns /work.
3. The tree is cleaned of what varies between builds (logs, caches, apt lists) and
   archived with sorted names, numeric owners and SOURCE_DATE_EPOCH times.
4. buildah builds release/Containerfile (FROM scratch, ADD the archive, no RUN step)
   with a fixed timestamp, and writes a docker-archive to dist/.

Needs root (debootstrap, chroot) and buildah.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

from common import HERE, Layout, ReleaseError, Source, log, run

SUITE = "bookworm"
PACKAGES = ("python3", "ca-certificates")
UID = 10001
# what a build leaves that says when or where it ran, not what the image is
VOLATILE = (
    "var/log",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/cache/debconf/config.dat-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/apt/lists",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/machine-id",
    "etc/shadow-",
    "etc/passwd-",
    "etc/group-",
    "etc/gshadow-",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
    "tmp",
)


def mirrors() -> tuple[str, str]:
    """The Debian and Debian security mirrors: the environment's, else the host's apt's."""
    main = os.environ.get("CORRAL_DEBIAN_MIRROR")
    security = os.environ.get("CORRAL_DEBIAN_SECURITY_MIRROR")
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if (main is None or security is None) and sources.is_file():
        for stanza in sources.read_text(encoding="utf-8").split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if not uris or not suites:
                continue
            if f"{SUITE}-security" in suites.group(1).split():
                security = security or uris.group(1)
            elif SUITE in suites.group(1).split():
                main = main or uris.group(1)
    if main is None or security is None:
        raise ReleaseError(
            "no Debian mirror known: set CORRAL_DEBIAN_MIRROR and CORRAL_DEBIAN_SECURITY_MIRROR"
        )
    return main, security


def chroot(rootfs: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    return run(["chroot", rootfs, *argv], env={**base, **(env or {})}, quiet=True, capture=True)


def base_system(layout: Layout, src: Source) -> Path:
    """Debian with python3, up to date; cached per day and mirror in build/."""
    main, security = mirrors()
    rootfs = layout.build / "container" / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            rootfs,
            main,
        ],
        quiet=True,
    )
    (rootfs / "etc" / "apt" / "sources.list").write_text(
        f"deb {main} {SUITE} main\ndeb {main} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n",
        encoding="utf-8",
    )
    shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    apt = {"DEBIAN_FRONTEND": "noninteractive"}
    chroot(rootfs, "apt-get", "update", "-q", env=apt)
    chroot(rootfs, "apt-get", "-y", "-q", "--no-install-recommends", "upgrade", env=apt)
    chroot(rootfs, "apt-get", "clean", env=apt)
    return rootfs


def install_corral(layout: Layout, src: Source, rootfs: Path) -> None:
    staging = rootfs / "tmp" / "corral"
    wheels = staging / "wheels"
    wheels.mkdir(parents=True)
    for wheel in layout.wheelhouse.glob("*.whl"):
        if "-cp311-" in wheel.name or "-abi3-" in wheel.name or "-none-any" in wheel.name:
            shutil.copy(wheel, wheels)
    shutil.copy(layout.wheel, wheels)
    shutil.copy(HERE / "requirements.txt", staging / "requirements.txt")
    # pip itself is not installed in the image: the tools' pip runs from the staging area
    shutil.copytree(
        layout.tools / "lib" / "python3.11" / "site-packages" / "pip", staging / "pip" / "pip"
    )
    env = {
        "PYTHONPATH": "/tmp/corral/pip",
        "SOURCE_DATE_EPOCH": str(src.epoch),
        "PYTHONHASHSEED": "0",
    }
    chroot(rootfs, "/usr/bin/python3", "-m", "venv", "--without-pip", "/opt/corral")
    pip = ["/opt/corral/bin/python", "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    pip += ["--no-compile", "--find-links", "/tmp/corral/wheels"]
    chroot(rootfs, *pip, "--require-hashes", "-r", "/tmp/corral/requirements.txt", env=env)
    chroot(rootfs, *pip, f"/tmp/corral/wheels/{layout.wheel.name}", env=env)
    chroot(
        rootfs,
        "/opt/corral/bin/python",
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "unchecked-hash",
        "/opt/corral/lib",
        env=env,
    )
    marker = rootfs / "opt" / "corral" / "share" / "corral" / "artifact"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("container\n", encoding="utf-8")
    (rootfs / "usr" / "local" / "bin" / "corral").symlink_to("/opt/corral/bin/corral")


def add_user(rootfs: Path) -> None:
    """The `corral` user, written directly (useradd would stamp today's date in shadow)."""
    etc = rootfs / "etc"
    with (etc / "passwd").open("a", encoding="utf-8") as passwd:
        passwd.write(f"corral:x:{UID}:{UID}:corral:/home/corral:/usr/sbin/nologin\n")
    with (etc / "group").open("a", encoding="utf-8") as group:
        group.write(f"corral:x:{UID}:\n")
    with (etc / "shadow").open("a", encoding="utf-8") as shadow:
        shadow.write("corral:!:0:0:99999:7:::\n")
    with (etc / "gshadow").open("a", encoding="utf-8") as gshadow:
        gshadow.write("corral:!::\n")
    for folder in ("home/corral", "work"):
        path = rootfs / folder
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, UID, UID)
        path.chmod(0o750 if folder.startswith("home") else 0o755)


def clean(rootfs: Path) -> None:
    for relative in VOLATILE:
        path = rootfs / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            path.mkdir(mode=0o1777 if relative == "tmp" else 0o755)
        elif path.exists() or path.is_symlink():
            path.unlink()
    (rootfs / "etc" / "machine-id").write_text("", encoding="utf-8")
    for folder in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)  # what apt-get expects
    docs = rootfs / "usr" / "share" / "doc"
    for path in sorted(docs.rglob("*"), reverse=True):
        # keep the copyright files: they are the packages' licences
        if path.is_file() and path.name != "copyright":
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def archive(rootfs: Path, target: Path, epoch: int) -> None:
    """The tree as a tar that depends only on its contents: sorted, fixed times and owners."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = epoch
        info.uname = info.gname = ""
        return info

    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in [rootfs, *sorted(rootfs.rglob("*"))]:
            name = "." if path == rootfs else "./" + path.relative_to(rootfs).as_posix()
            tar.add(path, arcname=name, recursive=False, filter=normalise)


def build(layout: Layout, src: Source) -> Path:
    if os.geteuid() != 0:
        raise ReleaseError("the container build needs root (debootstrap and chroot)")
    for tool in ("debootstrap", "buildah"):
        if shutil.which(tool) is None:
            raise ReleaseError(f"the container build needs {tool} (apt-get install {tool})")
    if not layout.wheel.is_file() or not layout.wheelhouse.is_dir():
        raise ReleaseError("build the wheel first: make release")
    rootfs = base_system(layout, src)
    install_corral(layout, src, rootfs)
    add_user(rootfs)
    clean(rootfs)
    context = layout.build / "container" / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    archive(rootfs, context / "rootfs.tar", src.epoch)
    image = f"localhost/corral:{layout.version}"
    run(
        [
            "buildah",
            "build",
            "--quiet",
            "--format",
            "docker",
            "--timestamp",
            str(src.epoch),
            "--build-arg",
            f"VERSION={layout.version}",
            "--build-arg",
            f"COMMIT={src.commit}",
            "--tag",
            image,
            "--file",
            HERE / "Containerfile",
            context,
        ],
        quiet=True,
    )
    layout.container.unlink(missing_ok=True)
    pushed = context / "image.tar"
    run(["buildah", "push", "--quiet", image, f"docker-archive:{pushed}:{image}"], quiet=True)
    normalise_archive(pushed, layout.container)
    size = layout.container.stat().st_size / 1e6
    log(f"built {layout.container.name} ({size:.1f} MB), image {image}")
    return rootfs


def normalise_archive(source: Path, target: Path) -> None:
    """Rewrite buildah's docker-archive without what differs between two builds of the
    same image: buildah 1.28 writes the id and hostname of its working container into
    the image config (newer ones have --source-date-epoch for that). The layers are
    kept byte for byte; the config loses those two fields, so the image id is a pure
    function of the contents. The legacy per-layer folders (for docker < 1.10) go."""
    with tarfile.open(source) as tar:
        manifest = json.loads(_read(tar, "manifest.json"))
        if len(manifest) != 1:
            raise ReleaseError(f"{source}: expected one image, found {len(manifest)}")
        config = json.loads(_read(tar, manifest[0]["Config"]))
        config.pop("container", None)
        for section in ("config", "container_config"):
            if isinstance(config.get(section), dict):
                config[section]["Hostname"] = ""
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest[0]["Config"] = config_name
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
            for layer in manifest[0]["Layers"]:
                member = tar.getmember(layer)
                out.addfile(_entry(layer, member.size), tar.extractfile(member))
            for name, data in ((config_name, config_bytes), ("manifest.json", manifest_bytes)):
                out.addfile(_entry(name, len(data)), io.BytesIO(data))


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise ReleaseError(f"image archive: {name} is missing")
    return handle.read()


def _entry(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o444, 0
    return info


def debian_packages(rootfs: Path) -> list[tuple[str, str, str]]:
    output = run(
        [
            "dpkg-query",
            f"--admindir={rootfs / 'var' / 'lib' / 'dpkg'}",
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n",
        ],
        capture=True,
        quiet=True,
    )
    found = []
    for row in output.splitlines():
        name, version, arch, status = row.split("\t")
        if status.strip() == "ii":
            found.append((name, version, arch))
    return found
