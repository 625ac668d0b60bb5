"""What to run again: finishing a run that did not end well, continuing a task's thread.

Both read the run back from the store through the same two calls (``read_mission``,
``require_run``), so resume and reply can never rebuild a run two different ways.
"""

from __future__ import annotations

from codex_mcp_wrapper.engine.results import CUT_SHORT_BY_CRASH, FINAL_STATUSES, TaskResult
from codex_mcp_wrapper.engine.store import RunStore
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.missions.model import Mission


def resume_plan(store: RunStore, run_id: str) -> tuple[Mission, dict[str, TaskResult]]:
    """The run's mission and what each task achieved so far.

    Tasks that ended ``ok`` are kept as they are. Any other task runs again; when it had a
    thread, the thread is continued from the first prompt it had not finished. A task whose
    wrapper died while it ran (``interrupted``) carries ``CUT_SHORT_BY_CRASH``: its next attempt
    tells the model that what it was doing was cut short by a crash, not by the user.
    """
    info = store.require_run(run_id)
    if info["status"] == "running":
        raise InputError(f"run {run_id} is still running; wait for it or cancel it first.")
    mission = store.read_mission(run_id)
    previous: dict[str, TaskResult] = {}
    for row in info["tasks"]:
        # running when its wrapper died: the row says so once a writer has marked the run
        crashed = bool(row["thread_id"]) and (
            row["status"] == "interrupted"
            or (info["status"] == "interrupted" and row["status"] not in FINAL_STATUSES)
        )
        if row["result"] and not crashed:
            previous[row["task_id"]] = TaskResult.model_validate(row["result"])
        elif row["thread_id"]:
            previous[row["task_id"]] = TaskResult(
                task_id=row["task_id"],
                index=row["index"],
                status="cancelled",
                worker=row["worker"],
                thread_id=row["thread_id"],
                turns_done=row["turns_done"],
                error=CUT_SHORT_BY_CRASH if crashed else None,
            )
    for result in previous.values():
        if result.status != "ok" and result.error != CUT_SHORT_BY_CRASH:
            result.error = None  # a fresh attempt; the old reason stays in the transcript
    return mission, previous


def continuation(
    store: RunStore, thread_id: str, prompt: str
) -> tuple[Mission, dict[str, tuple[str, str | None]]]:
    """A one-task mission that sends ``prompt`` in ``thread_id``, with the settings of the task
    that thread belongs to (after a restart too: the thread is resumed from its worker's home)."""
    origin = store.thread_origin(thread_id)
    if origin is None:
        raise InputError(
            f"no Codex thread '{thread_id}' is known to this wrapper (state dir "
            f"{store.state_dir}); start one with the codex tool."
        )
    run_id, task_id, worker = origin
    mission = store.read_mission(run_id)
    tasks = [t for t in mission.tasks if t.id == task_id]
    if not tasks:
        raise InputError(f"run {run_id} has no task '{task_id}'.")
    task = tasks[0].model_copy(
        update={
            "prompt": prompt,
            "follow_ups": [],
            "depends_on": [],
            "fork_from": None,
            "fork_turn": None,
        }
    )
    single = mission.model_copy(update={"tasks": [task]})
    return single, {task_id: (thread_id, worker)}


def task_thread(store: RunStore, run_id: str, task_id: str) -> str:
    """The Codex thread of a task of a run; InputError when it has none."""
    info = store.require_run(run_id)
    rows = {row["task_id"]: row for row in info["tasks"]}
    thread_id = (rows.get(task_id) or {}).get("thread_id")
    if not thread_id:
        raise InputError(f"task '{task_id}' of run {run_id} has no thread to continue.")
    return str(thread_id)
