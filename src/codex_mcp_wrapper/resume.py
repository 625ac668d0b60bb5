"""Finish a run that did not end well: keep its ok results, continue the rest in their threads."""

from __future__ import annotations

import json
from collections.abc import Sequence

from codex_mcp_wrapper.engine import run_mission
from codex_mcp_wrapper.errors import InputError, MissionError
from codex_mcp_wrapper.events import Subscriber
from codex_mcp_wrapper.execution import ApprovalHandler
from codex_mcp_wrapper.mission import Mission, parse_mission
from codex_mcp_wrapper.results import RunSummary, TaskResult
from codex_mcp_wrapper.settings import Settings
from codex_mcp_wrapper.store import RunStore


def load_for_resume(store: RunStore, run_id: str) -> tuple[Mission, dict[str, TaskResult]]:
    """The run's mission and what each task achieved so far.

    Tasks that ended ``ok`` are kept as they are. Any other task runs again; when it had a
    thread, the thread is continued from the first prompt it had not finished.
    """
    info = store.get_run(run_id)
    if info is None:
        raise InputError(f"no run '{run_id}'; see `codex-mcp-wrapper runs list`.")
    if info["status"] == "running":
        raise InputError(f"run {run_id} is still running; wait for it or cancel it first.")
    path = store.run_dir(run_id) / "mission.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissionError(f"cannot read the mission of run {run_id} from {path} ({exc}).") from exc
    mission = parse_mission(data, str(path), variables={})
    previous: dict[str, TaskResult] = {}
    for row in info["tasks"]:
        if row["result"]:
            previous[row["task_id"]] = TaskResult.model_validate(row["result"])
        elif row["thread_id"]:
            previous[row["task_id"]] = TaskResult(
                task_id=row["task_id"],
                index=row["index"],
                status="cancelled",
                worker=row["worker"],
                thread_id=row["thread_id"],
                turns_done=row["turns_done"],
            )
    for result in previous.values():
        if result.status != "ok":
            result.error = None  # a fresh attempt; the old reason stays in the transcript
    return mission, previous


async def resume_mission(
    run_id: str,
    settings: Settings,
    *,
    observers: Sequence[Subscriber] = (),
    approvals: ApprovalHandler | None = None,
) -> RunSummary:
    store = RunStore(settings.state_dir)
    try:
        mission, previous = load_for_resume(store, run_id)
    finally:
        store.close()
    return await run_mission(
        mission,
        settings,
        observers=observers,
        run_id=run_id,
        previous=previous,
        approvals=approvals,
    )
