"""The dashboard's router without a browser: the CSP and security headers on every
page, app paths falling back to index.html, no file outside static/, no API route
shadowed, and nothing in the shipped files that a strict CSP would refuse (inline
script or style, event-handler attributes) or that parses text as HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi import FastAPI
from fastapi.testclient import TestClient

from corral.server import dashboard

STATIC = Path(dashboard.__file__).parent / "static"


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(dashboard.router)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "path",
    ["/", "/login", "/runs", "/runs/20250101-abcd", "/runs/R/jobs/build", "/usage", "/start"],
)
def test_app_pages_are_index_html_with_a_strict_csp(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/assets/js/main.js">' in answer.text
    csp = answer.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-cache"


def test_assets_are_served_with_their_types_and_the_csp(client: TestClient) -> None:
    js = client.get("/assets/js/main.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in js.headers
    css = client.get("/assets/app.css")
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../dashboard.py",
        "/assets/%2e%2e/dashboard.py",
        "/assets/nothing.js",
        "/assets/index.html",
        "/elsewhere",
    ],
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_dashboard_shadows_no_other_route(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True}


def _shipped(suffix: str) -> list[Path]:
    return sorted(STATIC.rglob(f"*{suffix}"))


def test_the_shipped_files_need_nothing_a_strict_csp_refuses() -> None:
    html = (STATIC / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "inline script"
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None, "event-handler attribute"
    scripts = _shipped(".js")
    assert len(scripts) >= 10
    for path in scripts:
        text = path.read_text()
        # text never becomes markup: no HTML parsing sinks, no eval
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in text, f"{path.name} uses {sink}"
        assert 'setAttribute("style"' not in text and "cssText" not in text, path.name


def test_every_module_the_app_imports_is_shipped() -> None:
    for path in _shipped(".js"):
        for target in re.findall(r'from "(\.[^"]+)"', path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"
