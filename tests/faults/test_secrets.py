"""Secrets: out of everything the wrapper prints or writes under runs/, yet real again when the
wrapper itself runs a task a second time (resume, reply)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from codex_mcp_wrapper.app import open_runs
from codex_mcp_wrapper.engine.resume import resume_plan
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.missions.loading import parse_mission
from codex_mcp_wrapper.settings import Settings, Timeouts

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]
SECRET = "tok-3f9a1c77e5b2d4a8"
LEN = f"len={len(SECRET)}"


def printing_mission(workspace: Path) -> dict:
    return {
        "mission_id": "secrets",
        "workspace_root": str(workspace),
        "provider": "scripted",
        "defaults": {"sandbox": "workspace-write"},
        "tasks": [
            {
                "id": "leaky",
                "prompt": "print the token",
                "env": {"API_TOKEN": SECRET},
                "script": [
                    {"shell": "echo token=$API_TOKEN; echo len=${#API_TOKEN}"},
                    {"say": "{last_output}"},
                ],
            }
        ],
    }


def test_run_json_and_every_file_under_runs_are_free_of_a_printed_secret(
    tmp_path: Path, cli_env: dict[str, str], state_dir: Path, workspace: Path
) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(printing_mission(workspace)))
    proc = subprocess.run(
        [sys.executable, "-m", "codex_mcp_wrapper", "run", str(path), "--json"],
        env=cli_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    summary = json.loads(proc.stdout)
    assert LEN in summary["tasks"][0]["final_message"]  # the command did see the real value
    assert "[REDACTED]" in summary["tasks"][0]["final_message"]
    files = [p for p in (state_dir / "runs").rglob("*") if p.is_file()]
    assert any(p.name == "model-requests.jsonl" for p in files)
    for file in files:
        assert SECRET.encode() not in file.read_bytes(), file
    kept = state_dir / "secrets" / f"{summary['run_id']}.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700


async def test_reply_and_resume_run_the_task_with_its_real_secret(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    mission = parse_mission(
        {
            "mission_id": "reply-secret",
            "workspace_root": str(workspace),
            "provider": "scripted",
            "defaults": {"sandbox": "workspace-write", "retries": 0},
            "tasks": [
                {
                    "id": "t",
                    "prompt": "go",
                    "env": {"API_TOKEN": SECRET},
                    "script": [
                        {"say": "first turn"},
                        {"shell": "echo len=${#API_TOKEN}"},
                        {"say": "replied {last_output}"},
                    ],
                },
                {"id": "gate", "prompt": "fail", "script": [{"fail": 400}]},
            ],
        },
        "test",
        variables={},
    )
    settings = Settings(
        state_dir=state_dir, codex_bin=codex_bin, workers=1, timeouts=Timeouts(retry_backoff=(0,))
    )
    runs = open_runs(settings)
    first = await runs.run(mission)
    assert [t.status for t in first.tasks] == ["ok", "failed"]
    reply = await runs.reply_task(first.run_id, "t", "once more")
    assert reply.status == "ok", reply.error
    final = reply.final_message or ""
    assert final.startswith("replied") and LEN in final  # "len=10" if it saw "[REDACTED]"
    # resume rebuilds the run the same way: the task that runs again gets the real value
    with RunStore.reader(state_dir) as store:
        again, previous = resume_plan(store, first.run_id)
    assert again.tasks[0].env == {"API_TOKEN": SECRET}
    assert set(previous) == {"t", "gate"} and previous["t"].status == "ok"


async def test_a_run_whose_secrets_file_is_gone_cannot_resume_and_says_why(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    mission = parse_mission(
        {**printing_mission(workspace), "defaults": {"retries": 0}}, "test", variables={}
    )
    mission.tasks[0].script = [{"fail": 400}]
    runs = open_runs(Settings(state_dir=state_dir, codex_bin=codex_bin, workers=1))
    first = await runs.run(mission)
    with RunStore.reader(state_dir) as store:
        os.unlink(store.secrets_path(first.run_id))
    from codex_mcp_wrapper.errors import MissionError

    with pytest.raises(MissionError, match=r"the secrets of run .* are gone"):
        await runs.resume(first.run_id)
