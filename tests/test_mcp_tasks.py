"""The tasks extension (SEP-2663) on 2026-07-28, driven by the official ``mcp`` client with a
client extension that claims task results and polls ``tasks/get``, as a tasks-aware client
does: a ``batch`` call answered as a task and polled to completion, a task cancelled with
``tasks/cancel``, and both found again by a new server process on the same state dir."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Literal

import pytest
from mcp import Client, StdioServerParameters
from mcp import types as mt
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from pydantic import ConfigDict, Field

from tests.helpers.mcp_client import server_argv
from tests.helpers.missions import mission_data

pytestmark = pytest.mark.anyio
TASKS = "io.modelcontextprotocol/tasks"
POLL = 0.1


class Loose(mt.Result):
    model_config = ConfigDict(extra="allow")


class TaskRequest(mt.Request[dict[str, Any], str]):
    method: str


class CreatedTask(mt.Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = Field("task", alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str


async def task_call(session: Any, method: str, task_id: str) -> dict[str, Any]:
    answer = await session.send_request(
        TaskRequest(method=method, params={"taskId": task_id}), Loose
    )
    return dict(answer.model_extra or {})


class TasksClient(ClientExtension):
    """Claims ``resultType: task`` answers: notes the task, polls it until it ends, and hands
    back the inlined tool result (or an error result naming the end status)."""

    identifier = TASKS

    def __init__(self, approve: bool = False) -> None:
        self.created: list[str] = []
        self.polls: list[str] = []
        self.asked: list[str] = []
        self.approve = approve  # the answer to input_required questions
        self.started = asyncio.Event()

    def claims(self) -> tuple[ResultClaim[Any], ...]:
        return (ResultClaim(result_type="task", model=CreatedTask, resolve=self.resolve),)

    async def resolve(self, created: CreatedTask, ctx: ClaimContext) -> mt.CallToolResult:
        self.created.append(created.task_id)
        self.started.set()
        async with asyncio.timeout(120):
            while True:
                state = await task_call(ctx.session, "tasks/get", created.task_id)
                self.polls.append(state["status"])
                if state["status"] == "completed":
                    return mt.CallToolResult.model_validate(state["result"], by_name=False)
                if state["status"] == "input_required":
                    answers = {}
                    for key, question in state["inputRequests"].items():
                        self.asked.append(question["params"]["message"])
                        answers[key] = {"action": "accept", "content": {"approve": self.approve}}
                    update = {"taskId": created.task_id, "inputResponses": answers}
                    await ctx.session.send_request(
                        TaskRequest(method="tasks/update", params=update), Loose
                    )
                if state["status"] in ("failed", "cancelled"):
                    text = f"task {state['status']}: {state.get('statusMessage')}"
                    return mt.CallToolResult(content=[mt.TextContent(text=text)], is_error=True)
                await asyncio.sleep(POLL)  # the client's poll interval, as the spec has it


def params(state_dir: Path, codex_bin: str, workspace: Path) -> StdioServerParameters:
    argv = server_argv(state_dir, "--codex-bin", codex_bin, "--scripted")
    argv += ["--workspace", str(workspace)]
    return StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))


async def test_batch_runs_as_a_task_polled_to_completion_and_found_after_a_restart(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    mission = mission_data(
        workspace, [{"id": "slow", "prompt": "p", "script": [{"delay": 1}, {"say": "done"}]}]
    )
    tasks = TasksClient()
    server = params(state_dir, codex_bin, workspace)
    async with Client(server, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        assert TASKS in (client.server_capabilities.extensions or {})
        result = await client.call_tool("batch", {"mission": mission})
    assert not result.is_error, result.content
    assert result.structured_content["results"][0]["output"] == "done"  # type: ignore[index]
    assert tasks.polls[0] == "working" and tasks.polls[-1] == "completed"
    (task_id,) = tasks.created
    # A new server process knows the task: its id is the run's durable id.
    async with Client(server, extensions=[TasksClient()]) as client:
        state = await task_call(client.session, "tasks/get", task_id)
    assert state["status"] == "completed" and state["taskId"] == task_id
    assert state["result"]["structuredContent"]["results"][0]["output"] == "done"


async def test_a_task_is_cancelled_with_tasks_cancel_and_stays_cancelled_after_a_restart(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    mission = mission_data(workspace, [{"id": "stuck", "prompt": "p", "script": [{"hang": 300}]}])
    tasks = TasksClient()
    server = params(state_dir, codex_bin, workspace)
    async with Client(server, extensions=[tasks]) as client:
        call = asyncio.create_task(client.call_tool("batch", {"mission": mission}))
        async with asyncio.timeout(60):
            await tasks.started.wait()
        (task_id,) = tasks.created
        assert await task_call(client.session, "tasks/cancel", task_id) == {
            "resultType": "complete"
        }
        result = await asyncio.wait_for(call, 60)
        assert result.is_error and "task cancelled" in result.content[0].text  # type: ignore[union-attr]
        unknown = client.session.send_request(
            TaskRequest(method="tasks/get", params={"taskId": "no-such-run"}), Loose
        )
        with pytest.raises(Exception, match="no task no-such-run"):
            await unknown
    async with Client(server, extensions=[TasksClient()]) as client:
        state = await task_call(client.session, "tasks/get", task_id)
    assert state["status"] == "cancelled"


async def test_a_client_without_the_extension_gets_the_plain_result(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    server = params(state_dir, codex_bin, workspace)
    async with Client(server) as client:
        result = await client.call_tool("codex", {"prompt": "hi"})
    assert result.structured_content["content"] == "echo: hi"  # type: ignore[index]


async def test_an_approval_is_answered_through_input_required_on_2026_07_28(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    script = tmp_path / "s.json"
    script.write_text('[{"escalate": "touch approved.txt"}, {"say": "after: {last_output}"}]')
    asked: list[str] = []
    answers = iter([False, True])

    async def elicit(context: Any, request: mt.ElicitRequestParams) -> mt.ElicitResult:
        asked.append(request.message)
        return mt.ElicitResult(action="accept", content={"approve": next(answers)})

    argv = server_argv(
        state_dir, "--codex-bin", codex_bin, "--scripted", "--allow-danger-full-access"
    )
    argv += ["--script", str(script)]
    argv += ["--workspace", str(workspace)]
    server = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    call = {"prompt": "go", "approval-policy": "on-request"}
    async with Client(server, elicitation_callback=elicit) as client:
        assert client.protocol_version == "2026-07-28"
        declined = await client.call_tool("codex", call)
        assert not declined.is_error, declined.content
        assert not (workspace / "approved.txt").exists()
        accepted = await client.call_tool("codex", call)
        assert not accepted.is_error, accepted.content
    assert (workspace / "approved.txt").exists()
    assert len(asked) == 2 and all("touch approved.txt" in m for m in asked)


async def test_an_accepted_escalation_runs_even_where_the_shell_profile_would_block(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    """The flake of the test above, made deterministic. An accepted escalation runs its
    command outside the sandbox; in a login shell that sources the profile, where pyenv's
    rehash waits on a lock a killed shell left behind (other tests kill workers mid-command),
    so under a full suite the command sometimes timed out and the file never appeared. Here the
    profile waits on a lock that never goes: commands run in plain shells (`login_shell`
    false), so the command runs at once."""
    home, lock = tmp_path / "home", tmp_path / "stale.lock"
    home.mkdir()
    lock.touch()
    for profile in (".bash_profile", ".bashrc", ".profile"):
        (home / profile).write_text(f"while [ -e {lock} ]; do sleep 0.1; done\n")
    script = tmp_path / "s.json"
    script.write_text('[{"escalate": "touch approved.txt"}, {"say": "after: {last_output}"}]')

    async def approve(context: Any, request: mt.ElicitRequestParams) -> mt.ElicitResult:
        return mt.ElicitResult(action="accept", content={"approve": True})

    argv = server_argv(
        state_dir, "--codex-bin", codex_bin, "--scripted", "--allow-danger-full-access"
    )
    argv += ["--script", str(script), "--workspace", str(workspace)]
    env = {**os.environ, "HOME": str(home)}
    server = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    async with Client(server, elicitation_callback=approve) as client:
        result = await client.call_tool("codex", {"prompt": "go", "approval-policy": "on-request"})
    assert not result.is_error, result.content
    assert (workspace / "approved.txt").exists()


async def test_a_tasks_approval_is_asked_by_input_required_and_answered_with_tasks_update(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    script = tmp_path / "s.json"
    script.write_text('[{"escalate": "touch approved.txt"}, {"say": "after: {last_output}"}]')

    async def never(context: Any, request: mt.ElicitRequestParams) -> mt.ElicitResult:
        raise AssertionError("a task's question must come through tasks/get, not mid-call")

    argv = server_argv(
        state_dir, "--codex-bin", codex_bin, "--scripted", "--allow-danger-full-access"
    )
    argv += ["--script", str(script)]
    argv += ["--workspace", str(workspace)]
    server = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    tasks = TasksClient(approve=True)
    async with Client(server, extensions=[tasks], elicitation_callback=never) as client:
        result = await client.call_tool("codex", {"prompt": "go", "approval-policy": "on-request"})
    assert not result.is_error, result.content
    assert "input_required" in tasks.polls and tasks.polls[-1] == "completed"
    assert len(tasks.asked) == 1 and "touch approved.txt" in tasks.asked[0]
    assert (workspace / "approved.txt").exists()


async def test_codex_reply_asks_its_approvals_through_input_required_too(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    script = tmp_path / "s.json"
    script.write_text(
        '[{"escalate": "touch first.txt"}, {"say": "one"},'
        ' {"escalate": "touch second.txt"}, {"say": "two"}]'
    )
    asked: list[str] = []

    async def approve(context: Any, request: mt.ElicitRequestParams) -> mt.ElicitResult:
        asked.append(request.message)
        return mt.ElicitResult(action="accept", content={"approve": True})

    argv = server_argv(
        state_dir, "--codex-bin", codex_bin, "--scripted", "--allow-danger-full-access"
    )
    argv += ["--script", str(script)]
    argv += ["--workspace", str(workspace)]
    server = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    async with Client(server, elicitation_callback=approve) as client:
        first = await client.call_tool("codex", {"prompt": "go", "approval-policy": "on-request"})
        thread = first.structured_content["threadId"]  # type: ignore[index]
        second = await client.call_tool("codex-reply", {"prompt": "more", "threadId": thread})
    assert second.structured_content == {"threadId": thread, "content": "two"}
    assert (workspace / "first.txt").exists() and (workspace / "second.txt").exists()
    assert [("first" in m, "second" in m) for m in asked] == [(True, False), (False, True)]
