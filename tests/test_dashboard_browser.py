"""The dashboard in a real browser (Debian's Chromium through Playwright) against a real
`corral serve`: runs appear live, graph nodes change colour, a job's log follows live and
survives a network drop with no line lost or repeated, cancel works, a bad flow shows its
error at its line, and hostile output stays text. Screenshots of every page are kept
under the test's temporary folder (their paths are printed)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.browserkit import Relay, Server, Shots, chromium_path, corral_server

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
expect = playwright_sync.expect

DATA = Path(__file__).parent / "data" / "dashboard"

BAD_FLOW = """\
version: 1
jobs:
  first:
    run: echo one
  second:
    needs: [nowhere]
    run: echo two
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with corral_server(tmp_path / "server") as running:
        yield running


@pytest.fixture
def relay(server: Server) -> Iterator[Relay]:
    port = int(server.url.rsplit(":", 1)[1])
    cut = Relay(("127.0.0.1", port))
    yield cut
    cut.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    path = chromium_path()
    with playwright_sync.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(tmp_path)


def open_page(browser: Any, base: str, *, phone: bool = False) -> Any:
    """A signed-in page; any console error, page error or dialog fails the test."""
    if phone:
        context = browser.new_context(
            base_url=base, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
    else:
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    # a failed request is judged by its status and URL below, not by its console line
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and "Failed to load resource" not in m.text
            and page.problems.append(f"console: {m.text}")
        ),
    )
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and page.problems.append(f"HTTP {r.status} {r.request.method} {r.url}")
        ),
    )
    page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto("/")
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#token", "wrong")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("not this server's")
    page.fill("#token", "dashboard-test-token-0123456789")
    page.click("#login-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Runs")
    return page


def paste(editor: Any, text: str) -> None:
    """Put `text` in the flow editor as one paste does (one input event); Playwright's
    fill() types a 40 kB flow too slowly for a test."""
    script = (
        "(el, text) => { el.value = text; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    editor.evaluate(script, text)


def sleepers(gate: Path) -> str:
    return (DATA / "sleepers.yaml").read_text().replace("GATE", str(gate))


# what may answer 4xx on purpose: signed out at first, the wrong token, a bad flow, and a
# run the server accepted (201) a moment before its first event is on record (the run
# page waits for it)
EXPECTED_HTTP = re.compile(
    r"HTTP (401 GET \S+/api/v1/runs\?|401 POST \S+/api/v1/session$"
    r"|422 POST \S+/api/v1/validate$|404 GET \S+/api/v1/runs/[\w-]+(/jobs)?$)"
)


def problems(page: Any) -> list[str]:
    """What went wrong in the page: script errors, dialogs, unexpected failed requests."""
    return [p for p in page.problems if not EXPECTED_HTTP.match(p)]


def submit(server: Server, flow: str, *, rehearse: bool = False) -> str:
    answer = httpx.post(
        f"{server.url}/api/v1/runs",
        json={"flow": flow, "filename": "flow.yaml", "rehearse": rehearse},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["run_id"])


def run_status(server: Server, run_id: str) -> str:
    answer = httpx.get(
        f"{server.url}/api/v1/runs/{run_id}",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    return str(answer.json()["run"]["status"])


def wait_done(server: Server, run_id: str, page: Any, seconds: float = 30) -> None:
    for _ in range(int(seconds * 4)):
        if run_status(server, run_id) != "running":
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"run {run_id} still running")


def test_a_run_live_graph_log_drop_and_hostile_output(
    browser: Any, server: Server, relay: Relay, shots: Shots, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    page = open_page(browser, relay.url)
    shots.take(page, "runs-empty")

    # the run appears in the list live: it was started after the page was drawn
    run_id = submit(server, sleepers(gate))
    row = page.locator(f'#runs-body tr[data-run="{run_id}"]')
    expect(row).to_be_visible(timeout=15000)
    expect(row).to_contain_text("sleepers")
    expect(row.locator(".badge")).to_have_text("running")

    # a run's page: the graph from `needs`, a waiting job says what it waits for
    row.locator("a").first.click()
    graph = page.locator("#graph")
    fetch = graph.locator('g.node[data-job="fetch"]')
    expect(fetch).to_have_attribute("data-status", "running", timeout=15000)
    expect(graph.locator("path[data-from]")).to_have_count(3)
    build = graph.locator('g.node[data-job="build"]')
    expect(build).to_have_attribute("data-status", "waiting")
    expect(build.locator("title")).to_contain_text("waits for fetch")
    expect(page.locator('#jobs .vt-row[data-key="build"]')).to_contain_text("waits for fetch")
    expect(graph.locator('g.node[data-job="hostile"]')).to_have_attribute(
        "data-status", "succeeded", timeout=15000
    )
    shots.take(page, "run-live")

    # a second tab follows fetch's log live; the network drops mid-job; no line is lost
    # or repeated
    logs = page.context.new_page()
    logs.goto(f"/runs/{run_id}/jobs/fetch")
    log = logs.locator("#raw-log")
    expect(log.locator('li[data-n="40"]')).to_be_visible(timeout=15000)
    expect(logs.locator("#follow-state")).to_contain_text("live")
    assert relay.drop() >= 2  # both pages' sockets and streams are cut
    gate.touch()
    expect(log.locator('li[data-n="80"]')).to_be_visible(timeout=20000)
    expect(logs.locator("#follow-state")).to_have_text("complete", timeout=15000)
    texts = log.locator("li .text").all_inner_texts()
    assert texts == [f"fetch line {i}" for i in range(1, 81)]
    numbers = log.locator("li").evaluate_all("items => items.map(i => i.dataset.n)")
    assert numbers == [str(i) for i in range(1, 81)]
    shots.take(logs, "job-log")

    # meanwhile the first tab, never reloaded, saw every node change colour
    for job in ("fetch", "hostile", "build", "check"):
        expect(graph.locator(f'g.node[data-job="{job}"]')).to_have_attribute(
            "data-status", "succeeded", timeout=20000
        )
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=10000)
    expect(page.locator('#jobs .vt-row[data-key="check"]')).to_contain_text("succeeded")
    shots.take(page, "run-done")

    # hostile output is shown as text, never run or parsed as markup
    logs.goto(f"/runs/{run_id}/jobs/hostile")
    out = logs.locator('#raw-log li[data-stream="stdout"] .text')
    expect(out).to_have_text(["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"])
    expect(logs.locator('#raw-log li[data-stream="stderr"]')).to_contain_text("oops")
    assert logs.locator("#raw-log script, #raw-log img").count() == 0
    shots.take(logs, "job-hostile")
    assert problems(page) == []


@pytest.mark.timeout(300)  # the server writes 2,000 cancellations; slow on a loaded machine
def test_start_page_errors_then_a_big_run(
    browser: Any, server: Server, relay: Relay, shots: Shots
) -> None:
    page = open_page(browser, relay.url)
    page.click('nav a[data-nav="start"]')
    editor = page.locator("#flow-text")
    editor.fill(BAD_FLOW)
    error = page.locator("#flow-errors li.flow-error").first
    expect(error).to_be_visible(timeout=10000)
    expect(error).to_have_attribute("data-line", "6")
    expect(error).to_contain_text("line 6")
    expect(error).to_contain_text("nowhere")
    expect(page.locator(".gutter li.bad")).to_have_text("6")
    shots.take(page, "start-error")

    # 2,000 jobs that sleep, four at a time: the page stays light (grouped graph, virtual rows)
    jobs = "\n".join(f"  j{i:04d}:\n    run: sleep 30" for i in range(2000))
    paste(editor, f"version: 1\nname: big\nconcurrency: 4\njobs:\n{jobs}\n")
    expect(page.locator("#flow-verdict")).to_have_text("Valid: 2000 jobs.", timeout=20000)
    page.click("#start-run")
    expect(page.locator("#graph .graph-groups")).to_be_visible(timeout=20000)
    expect(page.locator("#jobs .vt-count")).to_have_text("2000 jobs", timeout=20000)
    drawn = page.locator("#jobs .vt-body .vt-row").count()
    assert 0 < drawn < 100
    page.locator("#jobs .vt-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(page.locator('#jobs .vt-row[data-key="j1999"]')).to_be_visible()
    expect(page.locator('#graph .group .count[data-status="running"]')).to_have_text(
        "4 running", timeout=20000
    )
    shots.take(page, "run-big")

    # 2,000 cancellations are 2,000 events for the server to write: asked here, checked
    # through the API (the page's cancel is checked on a small run below)
    page.click("#cancel")
    page.click('dialog.confirm button[value="yes"]')
    expect(page.locator(".message .ok")).to_contain_text("Cancelling")
    wait_done(server, page.url.rsplit("/", 1)[1], page, seconds=240)
    assert problems(page) == []


def test_cancel_asks_first_then_cancels(
    browser: Any, server: Server, relay: Relay, shots: Shots, tmp_path: Path
) -> None:
    run_id = submit(server, sleepers(tmp_path / "never"))  # fetch waits for a gate never opened
    page = open_page(browser, relay.url)
    page.goto(f"/runs/{run_id}")
    expect(page.locator('#graph g.node[data-job="fetch"]')).to_have_attribute(
        "data-status", "running", timeout=15000
    )
    # "keep it" keeps it; "cancel the run" cancels it
    page.click("#cancel")
    expect(page.locator("dialog.confirm")).to_contain_text(f"Cancel run {run_id}?")
    page.click('dialog.confirm button[value="no"]')
    page.wait_for_timeout(500)
    assert run_status(server, run_id) == "running"
    expect(page.locator("h1 .badge")).to_have_text("running")
    page.click("#cancel")
    page.click('dialog.confirm button[value="yes"]')
    expect(page.locator("h1 .badge")).to_have_text("cancelled", timeout=30000)
    expect(page.locator('#graph g.node[data-job="fetch"]')).to_have_attribute(
        "data-status", re.compile("cancelled|failed")
    )
    expect(page.locator("#resume")).to_be_enabled()
    expect(page.locator("#cancel")).to_be_disabled()
    shots.take(page, "run-cancelled")
    assert problems(page) == []


def test_phone_size_and_usage(
    browser: Any, server: Server, relay: Relay, shots: Shots, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    run_id = submit(server, sleepers(gate))
    page = open_page(browser, relay.url, phone=True)
    expect(page.locator(f'#runs-body tr[data-run="{run_id}"]')).to_be_visible(timeout=15000)
    wait_done(server, run_id, page)
    page.goto(f"/runs/{run_id}")
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=15000)
    # nothing wider than the screen but the scrolling boxes made to scroll
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    shots.take(page, "phone-run")
    # commands report no tokens: the usage page says so, and its CSV still downloads
    page.goto("/usage?by=flow")
    expect(page.locator("#usage-by")).to_have_value("flow")
    expect(page.locator(".message")).to_contain_text("Nothing recorded", timeout=15000)
    href = page.locator("#usage-csv").get_attribute("href")
    assert href is not None and href.startswith("/api/v1/usage.csv?by=flow")
    with page.expect_download() as download:
        page.click("#usage-csv")
    header = Path(download.value.path()).read_text().splitlines()[0]
    assert header.startswith("flow,")
    shots.take(page, "phone-usage")
    assert problems(page) == []


@pytest.mark.realcli
def test_rehearsed_agent_flow(
    browser: Any, tmp_path: Path, cli_bin: Path, shots: Shots, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{cli_bin}{os.pathsep}{os.environ['PATH']}")
    flow = (DATA / "rehearse.yaml").read_text()
    with corral_server(tmp_path / "server") as server:
        page = open_page(browser, server.url)
        page.click('nav a[data-nav="start"]')
        page.locator("#flow-text").fill(flow)
        expect(page.locator("#flow-verdict")).to_have_text("Valid: 1 job.", timeout=20000)
        page.check("#rehearse")
        page.click("#start-run")
        expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=90000)
        expect(page.locator('#graph g.node[data-job="analyze"]')).to_have_attribute(
            "data-status", "succeeded"
        )
        row = page.locator('#jobs .vt-row[data-key="analyze"]')
        expect(row).to_contain_text("claude")
        expect(row).to_contain_text("reported")
        expect(page.locator("#cost-chart svg.chart")).to_be_visible()
        shots.take(page, "run-rehearsed")
        page.click('#jobs .vt-row[data-key="analyze"] a')
        expect(page.locator("#raw-log li").first).to_be_visible(timeout=15000)
        page.click("#mode-text")
        expect(page.locator("#text-log li").first).to_be_visible(timeout=15000)
        expect(page.locator("#text-log")).to_contain_text("Two risks found.")
        shots.take(page, "job-narrative")
        page.goto("/usage?by=model&include_rehearsals=true")
        expect(page.locator("#usage-cost svg.chart")).to_be_visible(timeout=15000)
        shots.take(page, "usage")
        assert problems(page) == []


def test_contract_fields_the_server_may_send(
    browser: Any, server: Server, shots: Shots, tmp_path: Path
) -> None:
    """Fields of the API contract (docs/api.md) drawn as documented, with the answers
    replaced in the browser: a rehearsal's tag, a resumed run's line (a run and its
    resumes as one), an unpriced cost, budget bars near and over their limits, a job's
    last line (hostile, so shown as text)."""
    gate = tmp_path / "gate"
    gate.touch()
    run_id = submit(server, sleepers(gate))
    page = open_page(browser, server.url)
    wait_done(server, run_id, page)
    base = f"{server.url}/api/v1/runs"

    def patch(route: Any, change: Any) -> None:
        response = route.fetch()
        body = response.json()
        change(body)
        route.fulfill(response=response, json=body)

    def runs(body: dict[str, Any]) -> None:
        for run in body["runs"]:
            run.update(rehearsal=True, cost={"usd": "0.5", "source": "unpriced"})
            run["cost_source"] = "unpriced"
            run["chain"] = {"origin": "20261203-000000-<b>", "resumes": 2, "runs": []}

    def document(body: dict[str, Any]) -> None:
        body["budgets"] = {
            "run": [{"unit": "usd", "limit": "1.00", "spent": "0.85", "action": "stop"}],
            "jobs": {"fetch": [{"unit": "tokens", "limit": 1000, "spent": 1500, "action": "kill"}]},
        }

    def jobs(body: dict[str, Any]) -> None:
        for job in body["jobs"]:
            job["last_line"] = "<b>bold?</b>"

    page.route(f"{base}?*", lambda route: patch(route, runs))
    page.route(f"{base}/{run_id}", lambda route: patch(route, document))
    page.route(f"{base}/{run_id}/jobs", lambda route: patch(route, jobs))
    page.goto("/")
    row = page.locator(f'#runs-body tr[data-run="{run_id}"]')
    expect(row.locator(".tag.rehearsal")).to_have_text("rehearsal")
    resumed = row.locator(".tag.resumed")
    expect(resumed).to_have_text("2 resumes")
    expect(resumed).to_have_attribute("data-origin", "20261203-000000-<b>")
    expect(row.locator(".src")).to_have_text("unpriced")
    expect(row).to_contain_text("$0.5000")
    page.goto(f"/runs/{run_id}")
    run_budget = page.locator('#budgets .budget[data-scope="run"]')
    expect(run_budget).to_contain_text("$0.8500 of $1.0000")
    expect(run_budget).to_have_class(re.compile(r"\bnear\b"))
    job_budget = page.locator('#budgets .budget[data-job="fetch"]')
    expect(job_budget).to_contain_text("1,500 of 1,000 tokens")
    expect(job_budget).to_have_class(re.compile(r"\bover\b"))
    last = page.locator('#jobs .vt-row[data-key="check"] .last')
    expect(last).to_have_text("<b>bold?</b>")
    assert page.locator("#jobs b").count() == 0
    shots.take(page, "run-budgets")
    assert problems(page) == []
