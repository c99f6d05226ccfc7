"""End to end in a real browser: start app.py, run a small search, click a tree node, upload a
malformed trace, save a screenshot. Debian chromium driven by Playwright (no browser download).

Runs the tiny embedded policy (TTS_VIZ_TEST_POLICY=smollm2-135m, verifier arith, N=2, 2 rounds).
Screenshots go to $TTS_VIZ_SCREENSHOTS when set, else to pytest's tmp_path.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc) -> None:
    """Terminate, and kill what does not end within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian chromium (apt-get install chromium) for the browser test")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = dict(os.environ, TTS_VIZ_TEST_POLICY="smollm2-135m", GRADIO_SERVER_PORT=str(port),
               GRADIO_SERVER_NAME="127.0.0.1", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() - t0 > 150:
                pytest.fail(f"app.py did not serve {url} within 150 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        print(f"served after {time.time() - t0:.1f} s")
        yield url
    finally:
        stop_process(proc)


@pytest.fixture
def shots(tmp_path) -> Path:
    d = Path(os.environ.get("TTS_VIZ_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


NODE_POINTS = "#tts-tree .scatterlayer .trace:nth-child(3) .point"

# Screen position and hover text of node `id` in the tree figure (plotly's own axis mapping).
NODE_JS = """
(id) => {
  const gd = document.querySelector('#tts-tree .js-plotly-plot');
  gd.scrollIntoView({block: 'center'});
  const tr = gd.data.find(t => t.name === 'nodes');
  const k = tr.customdata.indexOf(id);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: box.left + xa.l2p(tr.x[k]), y: box.top + ya.l2p(tr.y[k]), hover: tr.hovertext[k],
          n: tr.customdata.length};
}
"""


def open_app(browser, url):
    """A new page on the app, ready to use; (page, list that collects the page's script errors)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#tts-run", timeout=60_000)
    return page, errors


def upload(page, path) -> None:
    """What a user does: click "Open a saved trace" and pick the file."""
    with page.expect_file_chooser() as chooser:
        page.click("#tts-upload")
    chooser.value.set_files(str(path))


def _text_of(hover: str) -> str:
    """First wrapped line of the step text from a node's hover (line 2, escaped by the figure)."""
    lines = hover.split("<br>")
    return html.unescape(lines[1]).strip() if len(lines) > 1 else ""


def test_run_click_upload_screenshot(app_url, shots, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page, errors = open_app(browser, app_url)

            # 1. run a small search; the tree's node markers appear (streamed) and the run ends
            t0 = time.time()
            page.click("#tts-run")
            page.wait_for_function(
                "document.querySelectorAll('#tts-tree .scatterlayer .point').length >= 3", timeout=150_000)
            first_tree = time.time() - t0
            expect(page.locator("#tts-status")).to_contain_text(re.compile("done|stopped|failed"), timeout=150_000)
            status = page.locator("#tts-status").inner_text()
            assert "failed" not in status, status
            print(f"first tree after {first_tree:.1f} s; {status}")
            page.wait_for_timeout(500)

            # 2. click a node: the inspector fills with that node's path and text
            info = page.evaluate(NODE_JS, 1)
            assert info["n"] >= 3
            page.mouse.move(info["x"], info["y"])
            page.mouse.click(info["x"], info["y"])
            inspector = page.locator("#tts-inspector")
            expect(inspector).to_contain_text("Node 1 ", timeout=20_000)
            want = _text_of(info["hover"])
            if want:
                got = " ".join(inspector.inner_text().split())
                assert " ".join(want.split())[:20] in got, (want, got[:500])
            page.screenshot(path=str(shots / "tts_viz_tree_clicked.png"), full_page=True)

            # download the trace: it is the tree on the page, and it reopens with no model
            with page.expect_download() as dl:
                page.click("#tts-download")
            saved = tmp_path / "saved_trace.json"
            dl.value.save_as(saved)
            from tts_viz.trace import Trace

            assert len(Trace.load(saved).nodes) == info["n"]

            # the fallback selector drives the same inspector
            sel = page.locator("#tts-node-num input")
            sel.fill("0")
            sel.press("Enter")
            expect(inspector).to_contain_text("Root: the question", timeout=20_000)

            # 3. a malformed trace upload shows an error message, not a traceback
            bad = tmp_path / "broken_trace.json"
            bad.write_text('{"version": 1, "question": "q", "strategy": "beam", "nodes": [{"id": 5}]')
            upload(page, bad)
            msg = page.locator("#tts-upload-msg")
            expect(msg).to_contain_text("Could not open this trace", timeout=30_000)
            assert "Traceback" not in msg.inner_text()
            page.screenshot(path=str(shots / "tts_viz_upload_error.png"), full_page=True)
            upload(page, saved)
            expect(msg).to_contain_text("Opened saved_trace.json", timeout=30_000)
            expect(page.locator("#tts-summary")).to_contain_text("smollm2-135m")

            # 4. Stop: a longer run stops after the current step and keeps its partial tree
            page.get_by_text("Advanced", exact=True).click()
            rounds = page.locator('input[aria-label="number input for Max rounds (steps)"]')
            rounds.fill("20")
            rounds.press("Enter")
            page.click("#tts-run")
            # wait for a finished round (the root alone is streamed first, as "round 0")
            expect(page.locator("#tts-status")).to_contain_text(re.compile(r"round [1-9]"), timeout=120_000)
            page.click("#tts-stop")
            expect(page.locator("#tts-status")).to_contain_text(re.compile("stopped|done"), timeout=120_000)
            assert "stopped" in page.locator("#tts-status").inner_text()
            expect(page.locator("#tts-summary")).to_contain_text("partial tree kept")
            assert page.locator("#tts-tree .scatterlayer .point").count() >= 3
            page.screenshot(path=str(shots / "tts_viz_stopped.png"), full_page=True)

            # 5. the Scaling tab draws the shipped sweep (or says how to produce it)
            page.get_by_role("tab", name="Scaling").click()
            table = page.locator("#tts-scaling-table")
            expect(table).to_contain_text(re.compile("Budget ratio|No sweep results shipped yet"), timeout=30_000)
            if "Budget ratio" in table.inner_text():
                page.wait_for_function(
                    "document.querySelectorAll('#tts-scaling .scatterlayer .trace').length >= 2", timeout=30_000)
            page.screenshot(path=str(shots / "tts_viz_scaling.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()


def test_noisy_oracle_run_marks_the_step_truth_and_reopens(app_url, shots, tmp_path):
    """Pick the oracle, turn its quality down to AUROC 0.6, run: the summary names the oracle and counts
    where it was fooled against the step truth; the downloaded trace reopens with the same marks."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page, errors = open_app(browser, app_url)
            expect(page.locator("#tts-quality")).to_be_hidden()
            page.click("#tts-verifier input")
            page.get_by_role("option", name=re.compile(r"^oracle")).click()
            expect(page.locator("#tts-quality")).to_be_visible(timeout=20_000)
            expect(page.locator("#tts-verifier-note")).to_contain_text("knows the answer")
            q = page.locator("#tts-quality input[type=number]")
            q.fill("0.6")
            q.press("Enter")
            expect(page.locator("#tts-verifier-note")).to_contain_text("Verifier quality", timeout=20_000)
            page.click("#tts-run")
            expect(page.locator("#tts-status")).to_contain_text(re.compile("done|failed"), timeout=150_000)
            assert "failed" not in page.locator("#tts-status").inner_text()
            summary = page.locator("#tts-summary")
            expect(summary).to_contain_text("oracle (knows the answer) at AUROC 0.6")
            expect(summary).to_contain_text("verifier vs step truth")
            page.wait_for_timeout(500)
            fooled = page.evaluate(
                "() => document.querySelector('#tts-tree .js-plotly-plot').layout.meta.fooled")
            page.screenshot(path=str(shots / "tts_viz_oracle_run.png"), full_page=True)
            with page.expect_download() as dl:
                page.click("#tts-download")
            saved = tmp_path / "oracle_trace.json"
            dl.value.save_as(saved)
            from tts_viz.trace import Trace

            trace = Trace.load(saved)
            assert trace.verifier == "oracle@0.6"
            assert any(n.true_label is not None for n in trace.nodes[1:])
            # another problem in the boxes, then reopen: the trace brings its own question and gold back
            page.locator("#tts-question textarea").fill("Something else entirely?")
            page.locator("#tts-gold textarea, #tts-gold input").fill("")
            upload(page, saved)
            expect(page.locator("#tts-upload-msg")).to_contain_text("Opened oracle_trace.json", timeout=30_000)
            expect(page.locator("#tts-question textarea")).to_have_value(trace.question)
            expect(page.locator("#tts-gold textarea, #tts-gold input")).to_have_value(trace.gold)
            expect(page.locator("#tts-download")).to_be_enabled()
            page.wait_for_timeout(500)
            again = page.evaluate("() => document.querySelector('#tts-tree .js-plotly-plot').layout.meta.fooled")
            assert again == fooled
            expect(summary).to_contain_text("verifier vs step truth")
            assert not errors, errors
        finally:
            browser.close()


def test_open_data_draws_an_imported_row_and_its_rescoring_side_by_side(app_url, shots, tmp_path):
    """A search-and-learn file uploaded on the Open data tab: the row's tree as stored, and beside it
    the same tree re-scored by arith, which overturns the stored PRM's wrong choice."""
    from playwright.sync_api import sync_playwright

    from tests.test_open_data import sal_row

    data = tmp_path / "sal.jsonl"
    data.write_text("\n".join(json.dumps(sal_row(unique_id=f"t/{i}")) for i in range(3)) + "\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page, errors = open_app(browser, app_url)
        page.get_by_role("tab", name="Open data").click()
        page.set_input_files("#tts-open-file input[type=file]", str(data))
        page.wait_for_timeout(1500)
        page.fill("#tts-open-row input", "1")
        page.click("#tts-open-btn")
        page.wait_for_function("() => {const gd = document.querySelector('#tts-open-a .js-plotly-plot');"
                               " return gd && gd.data && gd.data.some(t => t.name === 'nodes')}", timeout=60_000)
        page.click("#tts-open-verifier input")
        page.get_by_role("option", name="arith", exact=True).click()
        page.click("#tts-open-rescore")
        page.wait_for_function("() => {const gd = document.querySelector('#tts-open-b .js-plotly-plot');"
                               " return gd && gd.data && gd.data.some(t => t.name === 'nodes')}", timeout=60_000)
        page.wait_for_function("() => document.querySelector('#tts-open-msg').innerText.includes('arith chose')",
                               timeout=30_000)
        msg = page.inner_text("#tts-open-msg")
        assert "imported scores chose 24 ✗" in msg and "arith chose 20 ✓" in msg and "a different solution" in msg
        n_a = page.evaluate("() => document.querySelector('#tts-open-a .js-plotly-plot').data"
                            ".find(t => t.name === 'nodes').customdata.length")
        assert n_a == 9
        page.screenshot(path=str(shots / "open-data.png"), full_page=True)
        assert not errors, errors
        browser.close()


def test_compare_runs_both_sides_says_who_won_and_shows_the_knobs_a_method_uses(app_url, shots):
    """The Compare tab (its own module since the app was split into tab modules): A = beam, B = deepconf on
    the Search tab's problem; both trees stream in, the status line names the winner (or says both were
    right / wrong), and choosing deepconf brings its knob into the Search tab's Advanced."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page, errors = open_app(browser, app_url)
            page.get_by_role("tab", name="Compare").click()
            strat_b = page.get_by_label("Strategy B")
            strat_b.click()
            page.get_by_role("option", name="deepconf", exact=True).click()
            page.get_by_role("button", name="Compare", exact=True).click()
            status = page.locator("#tts-cmp-status")
            expect(status).to_contain_text(re.compile("wins|both right|both wrong|no gold"), timeout=240_000)
            for side in ("a", "b"):
                assert page.locator(f"#tts-tree-{side} .scatterlayer .point").count() >= 2
            page.screenshot(path=str(shots / "tts_viz_compare.png"), full_page=True)
            page.get_by_role("tab", name="Search").click()
            page.get_by_text("Advanced", exact=True).click()
            expect(page.locator("#tts-conf-keep")).to_be_visible(timeout=20_000)
            expect(page.locator("#tts-explore")).to_be_hidden()
            expect(page.locator("#tts-mcts-eval")).to_be_hidden()  # MCTS's own knobs only with MCTS
            assert not errors, errors
        finally:
            browser.close()
