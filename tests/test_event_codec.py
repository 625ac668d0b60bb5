"""The one JSON codec of run events (``engine.events.to_record``/``from_record``), as Temporal
hosts and the workflow send events to the submitter."""

from __future__ import annotations

import json

import pytest

from codex_mcp_wrapper.engine.events import (
    EVENT_TYPES,
    CodexEvent,
    Event,
    ModelRequest,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskUpdate,
    ThreadProgress,
    from_record,
    to_record,
)
from codex_mcp_wrapper.engine.results import RunSummary, TaskResult, summarise

RESULT = TaskResult(task_id="a", index=0, status="ok", worker="h/w1", final_message="done")
EVERY_EVENT: list[Event] = [
    RunStarted("r1", "m", {"tasks": [{"id": "a"}]}, ("a", "b"), "/w", "alice"),
    TaskUpdate("r1", "a", "retrying", "h/w1", 2, "the model failed"),
    CodexEvent("r1", "a", "item/completed", {"item": {"type": "agentMessage", "text": "hi"}}),
    ThreadProgress("r1", "a", "thread-1", "h/w1", 3),
    ModelRequest("r1", None, None, 7),
    TaskFinished("r1", RESULT),
    RunFinished("r1", summarise("r1", "m", [RESULT], 1.0, 2.0)),
]


def test_every_event_type_survives_json_and_back() -> None:
    assert {type(e).__name__ for e in EVERY_EVENT} == set(EVENT_TYPES)
    for event in EVERY_EVENT:
        record = json.loads(json.dumps(to_record(event)))
        assert "run_id" not in record
        assert from_record("r1", record) == event


def test_a_record_read_in_another_run_belongs_to_that_run() -> None:
    event = from_record("r2", to_record(TaskUpdate("r1", "a", "queued")))
    assert isinstance(event, TaskUpdate) and event.run_id == "r2" and event.attempt == 0


@pytest.mark.parametrize(
    "record",
    [
        {"type": "Nonsense"},
        {"method": "x"},
        {"type": "CodexEvent", "method": "x"},  # no task
        {"type": "TaskFinished", "result": {"task_id": "a"}},  # an invalid result
        {"type": "RunFinished", "summary": "not a summary"},
    ],
)
def test_what_is_not_an_event_is_a_value_error(record: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        from_record("r1", record)


def test_summaries_keep_their_counts() -> None:
    event = RunFinished("r1", summarise("r1", "m", [RESULT], 1.0, 2.0))
    back = from_record("r1", to_record(event))
    assert isinstance(back, RunFinished) and isinstance(back.summary, RunSummary)
    assert back.summary.counts == event.summary.counts and back.summary.status == "ok"
