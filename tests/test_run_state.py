"""What the application API answers about runs is typed (``RunState``, ``RunRecord``,
``RunRow``); the facades show ``to_json()``, which keeps the shapes clients have read."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from codex_mcp_wrapper import Mission, Settings, Task, open_runs
from codex_mcp_wrapper.engine.results import RunSummary
from codex_mcp_wrapper.engine.run_state import RunRow, RunState


def _mission(tmp_path: Path) -> Mission:
    return Mission(
        mission_id="typed",
        workspace_root=str(tmp_path / "ws"),
        provider="scripted",
        tasks=[Task(id="a", prompt="A", script=[{"say": "done"}])],
    )


@pytest.mark.anyio
async def test_status_wait_show_and_list_answer_typed_values(
    tmp_path: Path, codex_bin: str
) -> None:
    settings = Settings(state_dir=tmp_path / "state", scripted=True, codex_bin=codex_bin)
    async with open_runs(settings) as runs:
        run_id = runs.start(_mission(tmp_path))
        state = await runs.wait(run_id, timeout=120)
        assert isinstance(state, RunState) and state.done and state.status == "ok"
        assert state.summary is not None and state.summary.tasks["a"].final_message == "done"
        assert runs.status(run_id) == state
        shown = runs.show(run_id)
        assert isinstance(shown, RunSummary) and shown == state.summary
        rows = runs.list()
        assert [type(r) for r in rows] == [RunRow] and rows[0].run_id == run_id
        cancelled = await runs.cancel(run_id)  # it is over: nothing to cancel here
        assert cancelled.cancelled is False and cancelled.message
    data = state.to_json()
    assert data["run_id"] == run_id and data["done"] is True and data["status"] == "ok"
    assert data["tasks"][0]["task_id"] == "a"  # a finished run's summary, at the top level


def test_a_run_in_progress_shows_its_progress_as_before() -> None:
    state = RunState(run_id="r", mission_id="m", status="running", done=False, finished=0, total=2)
    assert state.to_json() == {
        "run_id": "r",
        "mission_id": "m",
        "status": "running",
        "done": False,
        "error": None,
        "finished": 0,
        "total": 2,
        "tasks": [],
    }


def test_reading_a_state_like_a_dict_still_works_and_says_it_is_deprecated() -> None:
    state = RunState(run_id="r", status="running", done=False)
    with pytest.warns(DeprecationWarning, match="use its attributes"):
        assert state["status"] == "running"
    with pytest.warns(DeprecationWarning):
        assert state.get("nothing", 1) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert state.status == "running"  # attributes never warn
