"""Benchmark: the web UI's run page for a run of many tasks, side by side with the static
HTML report of the same run (the same page frozen, from the same templates): page weight
(bytes of HTML; nothing else is fetched) and time to first contentful paint in headless
chromium (medians of fresh pages).

    python bench/bench_ui.py [--tasks 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

WRAPPER = [sys.executable, "-m", "codex_mcp_wrapper"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
# The paint entry, once chromium has painted (buffered: an earlier paint counts).
FIRST_PAINT = """() => new Promise(resolve => new PerformanceObserver(list => {
  const entry = list.getEntriesByName("first-contentful-paint")[0];
  if (entry) { resolve(entry.startTime); }
}).observe({type: "paint", buffered: true}))"""
RUN_TIMEOUT = 600  # seconds for the run of all the tasks


def run_mission(tmp: Path, tasks: int, env: dict[str, str]) -> dict[str, object]:
    """Run ``tasks`` one-message tasks on the scripted model; the run's summary."""
    mission = tmp / "many.yaml"
    lines = [f"mission_id: ui-bench\nworkspace_root: {tmp / 'ws'}\nprovider: scripted\ntasks:"]
    lines += [f"  - {{id: t{i:03d}, prompt: task {i}}}" for i in range(tasks)]
    mission.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [*WRAPPER, "run", str(mission), "--json", "--quiet", "--workers", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def first_paint(browser: Browser, url: str) -> float:
    """Milliseconds from navigation to the first contentful paint of a fresh page."""
    page = browser.new_page()
    try:
        page.goto(url, wait_until="load")
        paint = page.evaluate(FIRST_PAINT)
        return float(paint)
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as name:
        tmp = Path(name)
        env = {**os.environ, "CODEX_MCP_WRAPPER_HOME": str(tmp / "state")}
        summary = run_mission(tmp, args.tasks, env)
        report = Path(str(summary["run_dir"])) / "report.html"
        ui = subprocess.Popen(
            [*WRAPPER, "ui", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            assert ui.stderr is not None
            base = ui.stderr.readline().split()[-1].rstrip("/")
            page_url = f"{base}/runs/{summary['run_id']}"
            with urllib.request.urlopen(page_url) as answer:
                ui_bytes = len(answer.read())
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    ui_ms = [first_paint(browser, page_url) for _ in range(args.repeat)]
                    report_ms = [first_paint(browser, report.as_uri()) for _ in range(args.repeat)]
                finally:
                    browser.close()
        finally:
            ui.terminate()
            ui.wait()
        print(f"run of {args.tasks} tasks, medians of {args.repeat} fresh pages")
        print(f"{'':24}{'ui run page':>14}{'report.html':>14}")
        print(f"{'page weight (KB)':24}{ui_bytes / 1024:14.1f}{report.stat().st_size / 1024:14.1f}")
        ui_med, report_med = statistics.median(ui_ms), statistics.median(report_ms)
        print(f"{'first paint (ms)':24}{ui_med:14.0f}{report_med:14.0f}")


if __name__ == "__main__":
    main()
