"""Forking threads with the real Codex on the scripted model: a task with ``fork_from`` starts
from a copy of that task's thread (its whole conversation, or its first ``fork_turn`` turns),
in a thread of its own, in parallel with other forks of it; ``codex-fork`` does the same for
an MCP client and returns the new thread id."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from codex_mcp_wrapper.scripted.player import Items, ScriptPlayer
from codex_mcp_wrapper.scripted.script import Say, Script
from tests.helpers.cli import run_cli
from tests.helpers.mcp_client import stdio_client

PARENT_PROMPT = "Remember the word ALBATROSS."
PARENT_FOLLOW_UP = "Also remember the number 4711."


def requests_of(run_dir: Path, thread_id: str) -> list[dict[str, Any]]:
    """What Codex sent the scripted model for ``thread_id``, in order."""
    lines = (run_dir / "model-requests.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if r["headers"].get("thread-id") == thread_id]


def conversation(request: dict[str, Any]) -> str:
    """The user and assistant messages of a model request, as text."""
    parts = []
    for item in request["body"]["input"]:
        if item.get("type") == "message" and item.get("role") in ("user", "assistant"):
            parts += [str(c.get("text", "")) for c in item.get("content", [])]
    return "\n".join(parts)


def test_forked_tasks_carry_their_parents_conversation_in_threads_of_their_own(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    mission = {
        "workspace_root": "./ws",
        "provider": "scripted",
        "defaults": {"timeout_sec": 120},
        "tasks": [
            {
                "id": "parent",
                "prompt": PARENT_PROMPT,
                "follow_ups": [PARENT_FOLLOW_UP],
                "script": [{"say": "Noted the word."}, {"say": "Noted the number."}],
            },
            {
                "id": "whole",
                "fork_from": "parent",
                "prompt": "Which word and number?",
                "script": [{"say": "ALBATROSS and 4711."}],
            },
            {
                "id": "early",
                "fork_from": "parent",
                "fork_turn": 1,
                "prompt": "Which word?",
                "script": [{"say": "ALBATROSS."}],
            },
        ],
    }
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump(mission))
    done = run_cli(["run", str(path), "--json"], cli_env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    parent, whole, early = summary["tasks"]
    assert [t["status"] for t in summary["tasks"]] == ["ok", "ok", "ok"]
    threads = {parent["thread_id"], whole["thread_id"], early["thread_id"]}
    assert len(threads) == 3 and None not in threads
    assert len(parent["turn_ids"]) == 2
    assert (whole["final_message"], early["final_message"]) == ("ALBATROSS and 4711.", "ALBATROSS.")
    run_dir = Path(summary["run_dir"])

    (first_of_whole,) = requests_of(run_dir, whole["thread_id"])
    seen = conversation(first_of_whole)
    for text in (PARENT_PROMPT, "Noted the word.", PARENT_FOLLOW_UP, "Noted the number."):
        assert text in seen, seen
    assert seen.rstrip().endswith("Which word and number?")

    (first_of_early,) = requests_of(run_dir, early["thread_id"])
    seen = conversation(first_of_early)
    assert PARENT_PROMPT in seen and "Noted the word." in seen
    assert PARENT_FOLLOW_UP not in seen  # fork_turn 1: the parent's first turn only

    events = (run_dir / "tasks" / "early" / "events.jsonl").read_text().splitlines()
    (opened,) = [
        json.loads(e)["params"] for e in events if json.loads(e).get("method") == "wrapper/thread"
    ]
    assert opened["forkedFrom"] == parent["thread_id"]
    assert opened["forkTurnId"] == parent["turn_ids"][0]
    # The parent's own thread is unchanged: it still has its two turns only.
    assert len(requests_of(run_dir, parent["thread_id"])) == 2


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            {"id": "b", "prompt": "x", "fork_from": "nope"},
            "task 'b' forks 'nope', which is not a task of this mission",
        ),
        ({"id": "b", "prompt": "x", "fork_turn": 1}, "task 'b' gives fork_turn without fork_from"),
        ({"id": "b", "prompt": "x", "fork_from": "b"}, "task 'b' forks itself"),
    ],
)
def test_a_fork_of_no_task_is_refused_before_anything_runs(
    tmp_path: Path, task: dict[str, Any], message: str
) -> None:
    path = tmp_path / "mission.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"id": "a", "prompt": "x"}, task]}))
    done = run_cli(["validate", str(path)], dict(os.environ))
    assert done.returncode == 2
    assert message in done.stderr, done.stderr


def test_a_fork_cycle_is_a_dependency_cycle(tmp_path: Path) -> None:
    path = tmp_path / "mission.yaml"
    tasks = [
        {"id": "a", "prompt": "x", "fork_from": "b"},
        {"id": "b", "prompt": "y", "depends_on": ["a"]},
    ]
    path.write_text(yaml.safe_dump({"tasks": tasks}))
    done = run_cli(["validate", str(path)], dict(os.environ))
    assert done.returncode == 2
    assert "dependency cycle: a -> b -> a" in done.stderr, done.stderr


@pytest.mark.anyio
async def test_codex_fork_gives_a_new_thread_with_the_conversation_that_outlives_a_restart(
    tmp_path: Path, state_dir: Path, codex_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_BIN", codex_bin)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    async with stdio_client(state_dir, "--scripted") as client:
        first = await client.call_tool("codex", {"prompt": PARENT_PROMPT, "cwd": str(workspace)})
        assert not first.is_error and first.structured_content is not None
        original = first.structured_content["threadId"]
        forked = await client.call_tool(
            "codex-fork", {"threadId": original, "prompt": "Which word?"}
        )
        assert not forked.is_error, forked.content
        assert forked.structured_content is not None
        copy = forked.structured_content["threadId"]
        assert copy and copy != original
        unknown = await client.call_tool("codex-fork", {"threadId": "nope", "prompt": "x"})
        assert unknown.is_error
    async with stdio_client(state_dir, "--scripted") as client:  # a restarted wrapper
        again = await client.call_tool("codex-reply", {"threadId": copy, "prompt": "And then?"})
        assert not again.is_error, again.content
        assert again.structured_content is not None
        assert again.structured_content["threadId"] == copy
    logs = state_dir.glob("runs/*/model-requests.jsonl")
    seen = sorted(  # the fork's first request, then the reply's (resumed from its rollout)
        (conversation(request) for log in logs for request in requests_of(log.parent, copy)),
        key=len,
    )
    assert len(seen) == 2
    assert PARENT_PROMPT in seen[0] and seen[0].rstrip().endswith("Which word?")
    assert seen[1].startswith(seen[0]) and seen[1].rstrip().endswith("And then?")


def test_the_scripted_model_plays_a_fork_from_its_first_step_and_a_resumed_thread_on() -> None:
    script = Script(steps=(Say(say="one"), Say(say="two")))
    player = ScriptPlayer(default=script)
    parent = player.answer({"thread-id": "parent"}, {"input": []})
    assert isinstance(parent, Items)
    history = {"input": [*parent.items, {"type": "message", "role": "user", "content": "more"}]}
    fork = player.answer({"thread-id": "fork"}, history)  # a copy of the parent's history
    assert isinstance(fork, Items) and fork.items[0]["content"][0]["text"] == "one"
    fresh = ScriptPlayer(default=script)  # the parent resumed by a restarted model
    resumed = fresh.answer({"thread-id": "parent"}, history)
    assert isinstance(resumed, Items) and resumed.items[0]["content"][0]["text"] == "two"


def test_a_request_an_older_codex_does_not_know_is_one_sentence_naming_it() -> None:
    from codex_mcp_wrapper.codex.jsonrpc import RpcError

    listing = ", ".join(f"`m{n}`" for n in range(200))  # Codex lists every request it knows
    error = RpcError(
        "thread/fork",
        {"code": -32600, "message": f"Invalid request: unknown variant `thread/fork`, {listing}"},
    )
    assert error.unsupported
    assert str(error) == (
        "thread/fork failed: this Codex does not support thread/fork (0.163.0 and later do); "
        "point --codex-bin (or $CODEX_BIN) at a newer Codex"
    )
