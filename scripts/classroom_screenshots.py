"""Screenshots of the app as a class sees it, from real runs on the embedded default models.

Starts `app.py` on a free port (the default 0.5B policy and its default verifier, the trained PRM),
drives it in Debian's chromium through Playwright and writes PNGs to --out: a beam tree at N=16 and at N=64 (the 16 run's
selected path in the inspector with its maths rendered), that trace reopened from its file (the
question back in the boxes and the summary), the Compare tab with its winner line, and the Scaling
tab in quantile view. Prints one JSON line with the seconds of each run. Takes a few minutes on 2
cores (the N=64 beam most of it); run it alone.

    .venv/bin/python scripts/classroom_screenshots.py --out runs/screenshots
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_app_browser import CHROME_ARGS as ARGS, CHROMIUM, _free_port as free_port, stop_process  # noqa: E402


def set_number(page, label: str, value) -> None:
    box = page.locator(f'input[aria-label="number input for {label}"]')
    box.fill(str(value))
    box.press("Enter")


def run_and_wait(page, timeout_s: int = 900) -> float:
    from playwright.sync_api import expect

    t0 = time.time()
    page.click("#tts-run")
    page.wait_for_timeout(1500)
    expect(page.locator("#tts-status")).to_contain_text(re.compile(r"\bdone\b|failed"), timeout=timeout_s * 1000)
    status = page.locator("#tts-status").inner_text()
    if "failed" in status:
        raise RuntimeError(status)
    page.wait_for_timeout(800)
    return round(time.time() - t0, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/screenshots")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    log = open(out / "app.log", "w")
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    seconds: dict[str, float] = {}
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#tts-run", timeout=60_000)

            # 1. beam at N=16 (M=4): the tree, then the chosen path in the inspector
            set_number(page, "Budget N (generations)", 16)
            page.get_by_text("Advanced", exact=True).click()
            set_number(page, "Beam width M", 4)
            seconds["beam_n16"] = run_and_wait(page)
            page.screenshot(path=str(out / "beam_n16.png"), full_page=True)
            page.locator("#tts-inspector").screenshot(path=str(out / "inspector_maths.png"))
            with page.expect_download() as dl:
                page.click("#tts-download")
            saved = out / "beam_n16_trace.json"
            dl.value.save_as(saved)

            # 2. beam at N=64
            set_number(page, "Budget N (generations)", 64)
            seconds["beam_n64"] = run_and_wait(page, 1500)
            page.locator("#tts-tree").screenshot(path=str(out / "beam_n64_tree.png"))
            page.screenshot(path=str(out / "beam_n64.png"), full_page=True)

            # 3. reopen the N=16 trace after typing another question: it brings its own back
            page.locator("#tts-question textarea").fill("Another question entirely?")
            with page.expect_file_chooser() as chooser:
                page.click("#tts-upload")
            chooser.value.set_files(str(saved))
            expect(page.locator("#tts-upload-msg")).to_contain_text("Opened", timeout=60_000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "reopened_trace.png"), full_page=True)

            # 4. Compare: beam against best-of-n at N=8
            set_number(page, "Budget N (generations)", 8)
            page.get_by_role("tab", name="Compare").click()
            t0 = time.time()
            page.get_by_role("button", name="Compare", exact=True).click()
            expect(page.locator("#tts-cmp-status")).to_contain_text(
                re.compile("wins|both right|both wrong|no gold"), timeout=900_000)
            seconds["compare_n8"] = round(time.time() - t0, 1)
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "compare.png"), full_page=True)

            # 5. Scaling in quantile view
            page.get_by_role("tab", name="Scaling").click()
            page.get_by_label("quantile (Snell)").check()
            page.wait_for_timeout(3000)
            page.screenshot(path=str(out / "scaling_quantile.png"), full_page=True)
            browser.close()
        print(json.dumps({"seconds": seconds, "page_errors": errors, "out": str(out)}))
        return 0 if not errors else 1
    finally:
        stop_process(app)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
