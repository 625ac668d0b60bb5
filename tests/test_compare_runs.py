"""Comparing runs: `runs diff` and `run --baseline` name what regressed and exit 1 for CI;
`run --repeat` and `runs history` say how steady each task is (real Codex, scripted model)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import CLI_TIMEOUT, REPO, run_cli
from tests.test_steer import GATE_TIMEOUT, gate_opened


def answering(tmp_path: Path) -> Path:
    """A mission whose `build` answers ${ANSWER} and expects `ok`; `docs` always passes."""
    path = tmp_path / "answering.yaml"
    path.write_text(
        f"""
mission_id: gate
workspace_root: {tmp_path / "ws"}
provider: scripted
tasks:
  - id: build
    prompt: Build it.
    retries: 0
    script: [{{say: "build ${{ANSWER}}"}}]
    expect: {{final_message: "build ok"}}
  - id: docs
    prompt: Document it.
    script: [{{say: "documented"}}]
"""
    )
    return path


def run_id(done: object) -> str:
    return str(json.loads(done.stdout)["run_id"])  # type: ignore[attr-defined]


def test_runs_diff_names_the_task_and_check_that_regressed_and_exits_1(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = str(answering(tmp_path))
    good = run_cli(["run", mission, "--json", "--var", "ANSWER=ok"], cli_env)
    assert good.returncode == 0, good.stderr
    bad = run_cli(["run", mission, "--json", "--var", "ANSWER=broken"], cli_env)
    assert bad.returncode == 1, bad.stderr
    diff = run_cli(["runs", "diff", run_id(good), run_id(bad)], cli_env)
    assert diff.returncode == 1, diff.stderr
    lines = diff.stdout.splitlines()
    assert lines[0].endswith("1 regressed, 0 fixed, 1 unchanged"), diff.stdout
    assert "  build: ok -> failed REGRESSED" in lines
    assert "    check final_message: /build ok/: passed -> failed (observed: build broken)" in lines
    assert "      -build ok" in lines and "      +build broken" in lines
    assert not any(line.startswith("  docs:") for line in lines)  # unchanged
    as_json = run_cli(["runs", "diff", run_id(good), run_id(bad), "--json"], cli_env)
    data = json.loads(as_json.stdout)
    assert data["regressed"] is True and as_json.returncode == 1
    assert [t["task_id"] for t in data["tasks"] if t["regressed"]] == ["build"]
    back = run_cli(["runs", "diff", run_id(bad), run_id(good)], cli_env)  # a fix gates nothing
    assert back.returncode == 0 and "  build: failed -> ok fixed" in back.stdout.splitlines()


def test_run_baseline_last_ok_compares_with_the_last_good_run(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = str(answering(tmp_path))
    none_yet = run_cli(["run", mission, "--var", "ANSWER=ok", "--baseline", "last-ok"], cli_env)
    assert none_yet.returncode == 2, none_yet.stderr  # nothing to compare with: one sentence
    assert none_yet.stderr.strip().splitlines()[-1].startswith("error: no earlier run")
    same = run_cli(["run", mission, "--var", "ANSWER=ok", "--baseline", "last-ok"], cli_env)
    assert same.returncode == 0, same.stderr
    assert "0 regressed, 0 fixed, 2 unchanged" in same.stderr
    worse = run_cli(
        ["run", mission, "--json", "--var", "ANSWER=no", "--baseline", "last-ok"], cli_env
    )
    assert worse.returncode == 1 and "build: ok -> failed REGRESSED" in worse.stderr
    assert json.loads(worse.stdout)["status"] == "failed"  # stdout stays the summary


def test_repeat_reports_the_pass_rate_of_a_flaky_task_and_history_agrees(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = tmp_path / "flaky.yaml"
    flip = "if [ -f flip ]; then rm flip; echo odd; else touch flip; echo even; fi"
    mission.write_text(
        f"""
mission_id: flaky
workspace_root: {tmp_path / "ws"}
provider: scripted
defaults: {{sandbox: workspace-write, retries: 0}}
tasks:
  - id: coin
    prompt: Flip it.
    script: [{{shell: "{flip}"}}, {{say: "{{last_output}}"}}]
    expect: {{final_message: even}}
  - id: steady
    prompt: Stay.
    script: [{{say: "same"}}]
"""
    )
    done = run_cli(["run", str(mission), "--repeat", "5", "--json", "--quiet"], cli_env)
    assert done.returncode == 1, done.stderr  # coin failed in some runs
    data = json.loads(done.stdout)
    rates = {t["task_id"]: (t["pass_rate"], t["statuses"]) for t in data["tasks"]}
    assert rates["coin"] == (0.6, ["ok", "failed", "ok", "failed", "ok"])
    assert rates["steady"][0] == 1.0 and len(data["runs"]) == 5
    assert "5 runs of mission flaky:" in done.stderr and "flaky" in done.stderr
    history = run_cli(["runs", "history", "flaky", "coin"], cli_env)
    assert history.returncode == 0, history.stderr
    (line,) = [x for x in history.stdout.splitlines() if x.strip().startswith("coin")]
    assert " 60% ok  ✓✗✓✗✓ " in line and line.endswith("flaky")
    unknown = run_cli(["runs", "history", "no-such-mission"], cli_env)
    assert unknown.returncode == 2 and "no finished run of mission" in unknown.stderr


def test_concurrent_repeats_share_the_workers_and_report_the_same_pass_rates(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # The coin flips under a lock, so runs going on at once still alternate: ok, failed, ...
    flip = "if [ -f flip ]; then rm flip; echo odd; else touch flip; echo even; fi"
    mission = tmp_path / "flaky.yaml"
    mission.write_text(
        f"""
mission_id: flaky-at-once
workspace_root: {tmp_path / "ws"}
provider: scripted
defaults: {{sandbox: workspace-write, retries: 0}}
tasks:
  - id: coin
    prompt: Flip it.
    script: [{{shell: "flock coin.lock sh -c '{flip}'"}}, {{say: "{{last_output}}"}}]
    expect: {{final_message: even}}
  - id: steady
    prompt: Stay.
    script: [{{say: "same"}}]
"""
    )
    args = ["run", str(mission), "--repeat", "4", "--concurrent-repeats", "--workers", "4"]
    done = run_cli([*args, "--json", "--quiet"], cli_env)
    assert done.returncode == 1, done.stderr  # coin failed in some runs
    data = json.loads(done.stdout)
    rates = {t["task_id"]: (t["pass_rate"], sorted(t["statuses"])) for t in data["tasks"]}
    assert rates == {
        "coin": (0.5, ["failed", "failed", "ok", "ok"]),
        "steady": (1.0, ["ok"] * 4),
    }
    assert "4 runs of mission flaky-at-once:" in done.stderr
    ended = [line for line in done.stderr.splitlines() if line.startswith("== run ")]
    assert sorted(line.split()[2] for line in ended) == ["1", "2", "3", "4"], done.stderr
    # Four workers for runs of two tasks: two runs went on at once.
    spans = sorted((run["started_at"], run["finished_at"]) for run in data["runs"])
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    alone = run_cli(["run", str(mission), "--concurrent-repeats"], cli_env)
    assert (alone.returncode, alone.stderr.strip()) == (
        2,
        "error: --concurrent-repeats goes with --repeat N (N of 2 or more).",
    )


def test_ctrl_c_stops_concurrent_repeats_and_names_the_runs_resume_finishes(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    os.mkfifo(ws / "gate.fifo")
    mission = tmp_path / "held.yaml"
    mission.write_text(
        f"""
mission_id: held
workspace_root: {ws}
provider: scripted
defaults: {{sandbox: workspace-write}}
tasks:
  - {{id: held, prompt: Wait., script: [{{shell: "cat gate.fifo"}}, {{say: "late"}}]}}
"""
    )
    argv = ["run", str(mission), "--repeat", "2", "--concurrent-repeats", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codex_mcp_wrapper", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env,
        cwd=REPO,
    )
    try:
        with gate_opened(ws / "gate.fifo", GATE_TIMEOUT):  # a task of a run is running
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted; the tasks that finished are kept"), err
    named = re.search(r"runs the others of each run \((.*)\)\.$", last)
    assert named, last
    started = {run.name for run in (state_dir / "runs").iterdir()}
    assert set(named.group(1).split(", ")) == started and len(started) == 2
