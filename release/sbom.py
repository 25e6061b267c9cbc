"""CycloneDX 1.6 SBOMs of exactly what each artifact contains.

- wheel, sdist: corral alone (its dependencies are installed separately, not shipped).
- one-file executable: the Python distributions, the CPython runtime, the system
  libraries (as Debian packages) and PyInstaller's bootloader, read from PyInstaller's
  own record of what it packed (the PKG and PYZ tables of contents).
- zipapp: every distribution in its site-packages, and shiv's bootstrap.
- container: every Debian package of the image and every distribution in its venv.

Documents are reproducible: the timestamp is SOURCE_DATE_EPOCH's, the serial number
is derived from the artifact's hash, lists are sorted. Each is validated against the
CycloneDX schema before it is written.
"""

from __future__ import annotations

import ast
import email.parser
import json
import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import HERE, Layout, ReleaseError, Source, log, run, sha256

SPEC_VERSION = "1.6"
_NAMESPACE = uuid.UUID("5b0d3a3e-4f59-4c8e-9a39-2e1f7c0b6d21")  # corral release SBOMs


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Dist:
    """One installed Python distribution: its metadata and the files it owns."""

    name: str
    version: str
    metadata: email.message.Message
    files: frozenset[str]  # paths relative to site-packages

    def component(self) -> dict[str, Any]:
        purl = f"pkg:pypi/{canonical(self.name)}@{self.version}"
        entry: dict[str, Any] = {
            "type": "library",
            "bom-ref": purl,
            "name": self.name,
            "version": self.version,
            "purl": purl,
        }
        licenses = _licenses(self.metadata)
        if licenses:
            entry["licenses"] = licenses
        summary = self.metadata.get("Summary")
        if summary:
            entry["description"] = str(summary)
        return entry


def dists(site: Path) -> list[Dist]:
    found = []
    for info in sorted(site.glob("*.dist-info")):
        meta = email.parser.Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        files: frozenset[str] = frozenset()
        record = info / "RECORD"
        if record.is_file():
            files = frozenset(
                line.split(",")[0]
                for line in record.read_text(encoding="utf-8").splitlines()
                if line
            )
        found.append(Dist(str(meta["Name"]), str(meta["Version"]), meta, files))
    return found


def _licenses(meta: email.message.Message) -> list[dict[str, Any]]:
    expression = meta.get("License-Expression")
    if expression:
        return [{"expression": str(expression)}]
    text = str(meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80:
        return [{"license": {"name": text}}]
    names = [
        str(c).rsplit("::", 1)[-1].strip()
        for c in meta.get_all("Classifier") or []
        if str(c).startswith("License ::") and str(c).count("::") >= 2
    ]
    return [{"license": {"name": n}} for n in sorted(set(names))]


def deb_components(packages: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Debian packages (name, version, architecture) as components."""
    out = []
    for name, version, arch in sorted(set(packages)):
        purl = f"pkg:deb/debian/{name}@{version}?arch={arch}"
        out.append(
            {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
        )
    return out


def cpython(version: str) -> dict[str, Any]:
    purl = f"pkg:generic/cpython@{version}"
    return {
        "type": "framework",
        "bom-ref": purl,
        "name": "cpython",
        "version": version,
        "purl": purl,
        "description": "the Python runtime and standard library",
        "licenses": [{"expression": "PSF-2.0"}],
    }


def tool_component(name: str, version: str, what: str) -> dict[str, Any]:
    purl = f"pkg:pypi/{name}@{version}"
    return {
        "type": "library",
        "bom-ref": purl,
        "name": name,
        "version": version,
        "purl": purl,
        "description": what,
    }


def document(
    layout: Layout, src: Source, artifact: Path, kind: str, components: list[dict[str, Any]]
) -> dict[str, Any]:
    digest = sha256(artifact)
    unique: dict[str, dict[str, Any]] = {c["bom-ref"]: c for c in components}
    ordered = [unique[ref] for ref in sorted(unique)]
    ref = f"artifact:{artifact.name}"
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, artifact.name + digest)}",
        "version": 1,
        "metadata": {
            "timestamp": src.date,
            "tools": {
                "components": [
                    {"type": "application", "name": "corral release", "version": layout.version}
                ]
            },
            "component": {
                "type": "container" if kind == "container" else "application",
                "bom-ref": ref,
                "name": "corral",
                "version": layout.version,
                "purl": f"pkg:pypi/corral@{layout.version}",
                "hashes": [{"alg": "SHA-256", "content": digest}],
                "properties": [
                    {"name": "corral:artifact", "value": kind},
                    {"name": "corral:commit", "value": src.commit},
                    {"name": "corral:file", "value": artifact.name},
                ],
            },
        },
        "components": ordered,
        "dependencies": [
            {"ref": ref, "dependsOn": [c["bom-ref"] for c in ordered]},
            *({"ref": c["bom-ref"]} for c in ordered),
        ],
    }


def write(
    layout: Layout, src: Source, artifact: Path, kind: str, components: list[dict[str, Any]]
) -> Path:
    """Validate and write the SBOM of `artifact` next to it."""
    text = (
        json.dumps(document(layout, src, artifact, kind, components), indent=2, sort_keys=True)
        + "\n"
    )
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise ReleaseError(f"SBOM of {artifact.name} is not valid CycloneDX: {error}")
    path = layout.sbom(artifact)
    path.write_text(text, encoding="utf-8")
    log(f"wrote {path.name} ({len(components)} components)")
    return path


def corral_only(layout: Layout) -> list[dict[str, Any]]:
    purl = f"pkg:pypi/corral@{layout.version}"
    return [
        {
            "type": "library",
            "bom-ref": purl,
            "name": "corral",
            "version": layout.version,
            "purl": purl,
        }
    ]


def zipapp_components(site: Path) -> list[dict[str, Any]]:
    import shiv

    return [d.component() for d in dists(site)] + [
        tool_component("shiv", shiv.__version__, "the zipapp's bootstrap (extracts and runs it)")
    ]


def onefile_components(work: Path, bundled: Path) -> list[dict[str, Any]]:
    """What PyInstaller packed, traced to where each file came from."""
    import PyInstaller

    pkg = ast.literal_eval((work / "PKG-00.toc").read_text(encoding="utf-8"))[2]
    pyz = ast.literal_eval((work / "PYZ-00.toc").read_text(encoding="utf-8"))[1]
    # "-" is PyInstaller's source for a namespace package (opentelemetry, with the server
    # extra): it packs no file, so there is nothing to trace
    sources = [
        Path(src) for _dest, src, kind in [*pkg, *pyz] if src and src != "-" and kind != "OPTION"
    ]
    installed = dists(bundled)
    owner = {file: dist for dist in installed for file in dist.files}
    prefix = Path(sys.base_prefix).resolve()
    pyinstaller = Path(PyInstaller.__file__).resolve().parent
    used: dict[str, Dist] = {}
    system: set[Path] = set()
    python = False
    for path in sources:
        resolved = path.resolve()
        if resolved.is_relative_to(bundled.resolve()):
            dist = owner.get(resolved.relative_to(bundled.resolve()).as_posix())
            if dist is None:
                raise ReleaseError(f"SBOM: {resolved} belongs to no distribution")
            used[dist.name] = dist
        elif resolved.is_relative_to(prefix):
            python = True
        elif any(resolved.is_relative_to(p) for p in (pyinstaller, work, HERE)):
            continue  # the bootloader, PyInstaller's own modules, archives, the entry script
        else:
            system.add(resolved)
    components = [d.component() for d in used.values()]
    if python:
        components.append(cpython(".".join(map(str, sys.version_info[:3]))))
    components.append(
        tool_component("pyinstaller", PyInstaller.__version__, "bootloader and import machinery")
    )
    components += deb_components(_owning_packages(system))
    return components


def _owning_packages(files: set[Path]) -> list[tuple[str, str, str]]:
    """The Debian packages that installed `files`, with their versions. dpkg may record a
    library under /lib or /usr/lib (merged /usr): both are asked. A file no package
    owns fails the build: the SBOM would be incomplete."""
    names: set[str] = set()
    for file in sorted(files):
        text = str(file)
        candidates = [text]
        if text.startswith("/usr/"):
            candidates.append(text.removeprefix("/usr"))
        owner = None
        for candidate in candidates:
            try:
                owner = run(["dpkg", "-S", candidate], capture=True, quiet=True)
                break
            except ReleaseError:
                continue
        if owner is None:
            raise ReleaseError(f"SBOM: {file} is packed but no Debian package owns it")
        packages = owner.splitlines()[0].split(": ", 1)[0]
        names.update(p.strip() for p in packages.split(","))
    query = run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\n", *sorted(names)],
        capture=True,
        quiet=True,
    )
    found = []
    for row in query.splitlines():
        name, version, arch = row.split("\t")
        found.append((name.split(":")[0], version, arch))
    return found
