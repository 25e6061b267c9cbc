"""The cache of the `corral.*` entry points: used only while nothing it depends on
changed, never trusted when it is not corral's, not private or not current, and a command
that finds it current does not import `importlib.metadata` at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from corral import entrycache, plugins
from corral.errors import CorralError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plugins.entries.cache_clear()
    plugins.installed.cache_clear()
    yield tmp_path / "cache" / "corral" / "plugins"
    plugins.entries.cache_clear()
    plugins.installed.cache_clear()


def groups(installed: entrycache.Installed | plugins.Installed) -> dict[str, list[tuple[str, str]]]:
    names = [plugins.TOOLS, plugins.PARSERS, plugins.EXECUTORS, plugins.STORES, plugins.COMMANDS]
    return {g: [(e.name, e.value) for e in installed.select(group=g)] for g in names}


def the_file(folder: Path) -> Path:
    (found,) = folder.glob("entry-points-*.json")
    return found


def plugin(root: Path, name: str, lines: str) -> Path:
    """A package on `root` (put on sys.path) whose dist-info registers `lines`."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(lines))
    return info / "entry_points.txt"


def test_the_cache_gives_what_the_metadata_gives_and_is_private(cache: Path) -> None:
    first = entrycache.installed()  # written
    again = entrycache.installed()  # read back
    assert groups(first) == groups(again) == groups(entry_points())
    assert groups(again)[plugins.COMMANDS]  # not vacuous
    assert os.stat(cache).st_mode & 0o777 == 0o700
    assert os.stat(the_file(cache)).st_mode & 0o777 == 0o600


def test_a_cached_entry_loads_what_the_entry_point_names(cache: Path) -> None:
    entrycache.installed()
    (run,) = [e for e in entrycache.installed().select(group=plugins.COMMANDS) if e.name == "run"]
    from corral.cli.commands import RUN

    assert isinstance(run, entrycache.Entry) and run.load() is RUN
    # a value with extras is left to importlib.metadata, as before
    assert entrycache.Entry("x", "corral.cli.commands:RUN [server]", "g").load() is RUN
    with pytest.raises(AttributeError):
        entrycache.Entry("x", "corral.cli.commands:NOPE", "g").load()


def test_a_changed_or_new_entry_points_file_is_seen(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "site"
    monkeypatch.syspath_prepend(str(root))
    path = plugin(root, "demo", "[corral.tools]\none = demo:One\n")
    assert groups(entrycache.installed())[plugins.TOOLS][0] == ("one", "demo:One")
    path.write_text("[corral.tools]\nsecond = demo:Second\n")
    os.utime(path, ns=(1, 1))  # whatever the clock's resolution: another mtime
    assert ("second", "demo:Second") in groups(entrycache.installed())[plugins.TOOLS]
    plugin(root, "other", "[corral.parsers]\nextra = other:Parser\n")
    assert ("extra", "other:Parser") in groups(entrycache.installed())[plugins.PARSERS]


def test_a_name_registered_twice_is_still_an_error_with_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugin(tmp_path / "site", "clash", "[corral.commands]\nruns = clash:RUNS\n")
    for _ in range(2):  # written, then read back
        plugins.entries.cache_clear()
        plugins.installed.cache_clear()
        with pytest.raises(CorralError, match="command 'runs' is registered twice"):
            plugins.entries(plugins.COMMANDS)
    assert the_file(cache).exists()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda p: p.write_text("{not json"),
        lambda p: p.write_text(json.dumps({"format": 1, "key": [], "entries": []})),
        lambda p: p.write_text(
            json.dumps({**json.loads(p.read_text()), "entries": [["corral.tools", "x"]]})
        ),
        lambda p: p.chmod(0o644),
        lambda p: p.parent.chmod(0o755),
    ],
    ids=["corrupt", "stale", "malformed", "file-not-private", "folder-not-private"],
)
def test_a_spoilt_cache_is_never_trusted(cache: Path, spoil: object) -> None:
    entrycache.installed()
    path = the_file(cache)
    # poison it: a cache that is trusted would now offer a command that does not exist
    document = json.loads(path.read_text())
    document["entries"].append(["corral.commands", "evil", "os:system"])
    path.write_text(json.dumps(document))
    assert ("evil", "os:system") in groups(entrycache.installed())[plugins.COMMANDS]
    assert callable(spoil)
    spoil(path)
    assert groups(entrycache.installed()) == groups(entry_points())


def test_where_corral_starts_does_not_matter_until_a_folder_holds_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = list(sys.path[1:])
    keys = []
    for folder in ("a", "b"):  # `python -m corral` in two folders, or two scripts' folders
        (tmp_path / folder).mkdir()
        monkeypatch.setattr(sys, "path", [str(tmp_path / folder), *rest])
        keys.append(entrycache.fingerprint())
    assert keys[0] == keys[1]
    plugin(tmp_path / "b", "demo", "[corral.tools]\none = demo:One\n")
    assert entrycache.fingerprint() != keys[0]


def test_a_one_file_executable_reads_the_metadata_and_writes_no_cache(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert groups(entrycache.installed()) == groups(entry_points())
    assert not cache.exists()


def test_an_unwritable_cache_folder_only_costs_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # not a folder
    assert groups(entrycache.installed()) == groups(entry_points())


def metadata_imported_twice(folder: Path, args: list[str]) -> list[str]:
    """Run `corral ARGS` twice in `folder` with a fresh cache; whether each imported
    `importlib.metadata` (the first run writes corral's cache, the second reads it)."""
    code = textwrap.dedent(
        """
        import sys
        from corral.cli.main import main
        try:
            main(sys.argv[1:])
        except SystemExit:
            pass
        print("importlib.metadata" in sys.modules, file=sys.stderr)
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    seen = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and done.stdout, done.stderr
        seen.append(done.stderr.strip().splitlines()[-1])
    return seen


@pytest.mark.parametrize("args", [["--help"], ["runs"]])
def test_a_command_with_a_current_cache_never_imports_importlib_metadata(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / ".corral").mkdir()  # the project (runs: "No runs recorded")
    assert metadata_imported_twice(tmp_path, args) == ["True", "False"]  # the first wrote it


class _Found:
    """What `plugins.installed()` gives, with `pydantic` entries or not."""

    def __init__(self, pydantic: list[str]) -> None:
        self.pydantic = pydantic

    def select(self, *, group: str) -> list[entrycache.Entry]:
        names = self.pydantic if group == plugins.PYDANTIC else []
        return [entrycache.Entry(n, f"{n}:plugin", group) for n in names]


def _loader(**changes: object) -> object:
    """A stand-in for `pydantic.plugin._loader` as pydantic 2.x has it, or changed."""
    import types

    module = types.ModuleType("pydantic.plugin._loader")
    state: dict[str, object] = {
        "PYDANTIC_ENTRY_POINT_GROUP": "pydantic",
        "get_plugins": lambda: (),
        "_loading_plugins": False,
        "_plugins": None,
        **changes,
    }
    for name, value in state.items():
        if value is not _Found:  # _Found marks an attribute the changed loader lacks
            setattr(module, name, value)
    return module


@pytest.mark.parametrize(
    ("entries", "changes", "seeded"),
    [
        ([], {}, True),  # no pydantic plugin: its scan is skipped
        (["user"], {}, False),  # a user's pydantic plugin: pydantic loads it itself
        ([], {"_plugins": _Found}, False),  # an upgraded loader without the cache
        ([], {"PYDANTIC_ENTRY_POINT_GROUP": "pydantic2"}, False),  # another group
        ([], {"get_plugins": None}, False),
        ([], {"_loading_plugins": _Found}, False),
        ([], {"_plugins": {"x": object()}}, False),  # loaded already: untouched
    ],
)
def test_pydantics_plugin_scan_is_skipped_only_when_safe(
    monkeypatch: pytest.MonkeyPatch, entries: list[str], changes: dict[str, object], seeded: bool
) -> None:
    import pydantic.plugin

    fake = _loader(**changes)
    before = getattr(fake, "_plugins", "absent")
    monkeypatch.setattr(pydantic.plugin, "_loader", fake, raising=False)
    monkeypatch.setitem(sys.modules, "pydantic.plugin._loader", fake)
    monkeypatch.setattr(plugins, "installed", lambda: _Found(entries))
    assert plugins.skip_pydantic_plugin_scan() is seeded
    assert getattr(fake, "_plugins", "absent") == ({} if seeded else before)


def test_corrals_models_skip_pydantics_scan_but_a_users_pydantic_plugin_still_loads(
    tmp_path: Path,
) -> None:
    code = textwrap.dedent(
        """
        import sys, importlib.metadata as md
        scans = []
        real = md.entry_points
        md.entry_points = lambda **kw: scans.append(kw) or real(**kw)
        import corral.config.schema
        corral.config.schema.FlowSpec.model_validate({"jobs": {"a": {"run": "true"}}})
        import pydantic.plugin._loader as loader
        print(sorted(loader._plugins), scans, file=sys.stderr)
        """
    )
    site = tmp_path / "site"
    (site / "demo_pydantic_plugin.py").parent.mkdir(parents=True)
    (site / "demo_pydantic_plugin.py").write_text(
        textwrap.dedent(
            """
            import sys
            class Plugin:
                def new_schema_validator(self, schema, *args, **kwargs):
                    print("plugin called", file=sys.stderr)
                    return None, None, None
            plugin = Plugin()
            """
        )
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)

    def run(extra: str = "") -> list[str]:
        path = os.pathsep.join(filter(None, [extra, env.get("PYTHONPATH", "")]))
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stderr.strip().splitlines()

    run()  # writes the cache
    assert run() == ["[] []"]  # no plugin, no scan by pydantic (nor by corral's cache)
    plugin(site, "demo", "[pydantic]\ndemo = demo_pydantic_plugin:plugin\n")
    lines = run(str(site))
    assert "plugin called" in lines  # pydantic found and used the user's plugin
    assert lines[-1].startswith("['demo_pydantic_plugin:plugin'] [")


def _loader_is_known() -> bool:
    import zlib

    import pydantic.plugin

    source = (Path(next(iter(pydantic.plugin.__path__))) / "_loader.py").read_bytes()
    return (len(source), zlib.crc32(source)) in plugins.KNOWN_LOADERS


@pytest.mark.parametrize("known", [True, False])
def test_a_known_pydantic_loader_is_stood_in_for_and_any_other_imported(
    monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    import pydantic
    import pydantic.plugin
    import pydantic.plugin._loader as real

    if known and not _loader_is_known():
        pytest.skip("this pydantic's plugin loader is not one corral knows: it is imported")
    monkeypatch.delitem(sys.modules, plugins._LOADER)  # restored afterwards
    monkeypatch.setattr(pydantic.plugin, "_loader", real)
    if not known:
        monkeypatch.setattr(plugins, "KNOWN_LOADERS", frozenset())
    assert plugins._stand_in_loader() is known
    if not known:
        assert plugins._LOADER not in sys.modules  # left to the real import
        return
    stand_in = sys.modules[plugins._LOADER]
    assert stand_in is not real and pydantic.plugin._loader is stand_in
    assert not stand_in.get_plugins() and stand_in._plugins == {}
    assert stand_in.PYDANTIC_ENTRY_POINT_GROUP == real.PYDANTIC_ENTRY_POINT_GROUP

    class Model(pydantic.BaseModel):  # built through the stand-in
        x: int

    assert Model.model_validate({"x": "3"}).x == 3
    with pytest.raises(pydantic.ValidationError):
        Model.model_validate({"x": "three"})


def test_exec_never_imports_importlib_metadata_with_a_known_pydantic(tmp_path: Path) -> None:
    if not _loader_is_known():
        pytest.skip("this pydantic's plugin loader is not one corral knows: it is imported")
    assert metadata_imported_twice(tmp_path, ["exec", "-q", "--", "true"]) == ["True", "False"]
