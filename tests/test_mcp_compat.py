"""The drop-in for the removed ``codex mcp-server``, driven as its clients drove it: a raw
JSON-RPC client speaking 2025-06-18 over stdio (tests/helpers/mcp_client.py ``raw_session``),
compared with what 0.153.4 itself sent (tests/data/old-mcp-server.jsonl, captured with
scripts/capture_old_mcp_server.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_wrapper.mcp.legacy_events import MSG_TYPES
from tests.helpers.cli import run_cli
from tests.helpers.mcp_client import raw_session
from tests.helpers.missions import mission_data

pytestmark = pytest.mark.anyio
OLD_CAPTURE = Path(__file__).parent / "data" / "old-mcp-server.jsonl"


def old_messages() -> list[dict[str, Any]]:
    return [json.loads(line) for line in OLD_CAPTURE.read_text().splitlines()]


def text_of(response: dict[str, Any]) -> str:
    return str(response["result"]["content"][0]["text"])


async def test_the_tool_schemas_are_closed_and_described_as_the_old_codex_refused_unknowns(
    state_dir: Path, workspace: Path
) -> None:
    """What a raw 2025-06-18 client sees in tools/list. The refusals themselves, one sentence
    each, run over every transport and revision in tests/test_mcp_server.py."""
    # what the old server answered to a misspelled argument
    old = next(m for m in old_messages() if m.get("id") == 9)["result"]
    assert old["isError"] is True and "unknown field `approval_policy`" in text_of({"result": old})
    async with raw_session(state_dir, "--scripted", "--workspace", str(workspace)) as session:
        tools = (await session.request("tools/list", {}))["result"]["tools"]
        refused = await session.request(
            "tools/call", {"name": "codex", "arguments": {"prompt": "x", "approval_policy": "x"}}
        )
    for tool in tools:
        schema = tool["inputSchema"]
        # codex-reply's stays open, as 0.153.4's was (it ignored what it did not know)
        closed = schema.get("additionalProperties") is False
        assert closed == (tool["name"] != "codex-reply"), tool["name"]
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool['name']}.{name} has no description"
    codex = next(t for t in tools if t["name"] == "codex")
    assert "profile" not in codex["inputSchema"]["properties"]  # 0.153.4 had none either
    # refused as the old server refused: a tool error result, with no 2026-era resultType
    assert refused["result"]["isError"] is True and "resultType" not in refused["result"]


def events_of(session: Any, request_id: int) -> list[dict[str, Any]]:
    return [
        n["params"]
        for n in session.notifications("codex/event")
        if n["params"]["_meta"]["requestId"] == request_id
    ]


def write_script(path: Path, steps: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(steps))
    return path


async def test_codex_calls_stream_the_old_servers_codex_events_thread_id_first(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    script = write_script(
        tmp_path / "s.json", [{"shell": "echo hi"}, {"say": "ran: {last_output}"}]
    )
    args = ("--codex-bin", codex_bin, "--scripted", "--script", str(script))
    async with raw_session(state_dir, *args, "--workspace", str(workspace)) as session:
        response = await session.request(
            "tools/call",
            {"name": "codex", "arguments": {"prompt": "do shell", "sandbox": "workspace-write"}},
        )
        thread = response["result"]["structuredContent"]["threadId"]
        ours = events_of(session, session.next_id)
    # The same call on the old server (tests/data, request 2): the msg types we send, in order.
    old = [
        m["params"]["msg"]
        for m in old_messages()
        if m.get("method") == "codex/event" and m["params"]["_meta"]["requestId"] == 2
    ]
    wanted = [m["type"] for m in old if m["type"] in MSG_TYPES]
    assert [e["msg"]["type"] for e in ours] == wanted
    first = ours[0]
    assert first["msg"]["type"] == "session_configured" and first["id"] == ""
    assert first["msg"]["thread_id"] == first["msg"]["session_id"] == thread
    assert all(e["_meta"]["threadId"] == thread for e in ours)
    # each message carries the fields the old one had that clients read
    by_type = {e["msg"]["type"]: e["msg"] for e in ours}
    for msg in old:
        if msg["type"] in ("session_configured", "exec_command_end", "task_complete"):
            expected = {
                "session_id",
                "thread_id",
                "model",
                "cwd",
                "call_id",
                "command",
                "exit_code",
                "aggregated_output",
                "stdout",
                "last_agent_message",
                "turn_id",
            } & set(msg)
            assert expected <= set(by_type[msg["type"]]), msg["type"]
    assert by_type["exec_command_end"]["command"][-1] == "echo hi"
    assert by_type["exec_command_end"]["exit_code"] == 0
    assert by_type["task_complete"]["last_agent_message"].endswith("hi\n")


async def test_approvals_take_the_old_decision_answers_and_carry_the_codex_fields(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    script = write_script(
        tmp_path / "s.json", [{"escalate": "touch approved.txt"}, {"say": "after: {last_output}"}]
    )
    args = ("--codex-bin", codex_bin, "--scripted", "--script", str(script))
    args += ("--allow-danger-full-access",)  # the owner lets clients approve escalations
    asked: list[dict[str, Any]] = []

    def decide(decision: str) -> Any:
        def answer(request: dict[str, Any]) -> dict[str, Any]:
            assert request["method"] == "elicitation/create"
            asked.append(request["params"])
            return {"decision": decision}

        return answer

    call = {"name": "codex", "arguments": {"prompt": "go", "approval-policy": "on-request"}}
    # A client of the old server declared no elicitation capability and still answered.
    async with raw_session(state_dir, *args, "--workspace", str(workspace)) as session:
        denied = await session.request("tools/call", call, decide("denied"))
        assert not (workspace / "approved.txt").exists(), denied
        approved = await session.request("tools/call", call, decide("approved"))
        assert (workspace / "approved.txt").exists(), approved
        kinds = [e["msg"]["type"] for e in events_of(session, session.next_id)]
    old_ask = next(m for m in old_messages() if m.get("method") == "elicitation/create")["params"]
    for params in asked:
        assert set(old_ask) - {"codex_parsed_cmd"} <= set(params)
        assert params["codex_elicitation"] == "exec-approval"
        assert "touch approved.txt" in " ".join(params["codex_command"])
        assert params["codex_cwd"] == str(workspace)
    assert kinds.index("exec_approval_request") < kinds.index("exec_command_begin")


async def test_codex_events_can_be_turned_off(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    args = ("--codex-bin", codex_bin, "--scripted", "--no-codex-events")
    async with raw_session(state_dir, *args, "--workspace", str(workspace)) as session:
        response = await session.request(
            "tools/call", {"name": "codex", "arguments": {"prompt": "hi"}}
        )
        assert response["result"]["structuredContent"]["content"] == "echo: hi"
    assert session.notifications("codex/event") == []


async def test_logging_is_declared_and_set_level_is_honoured(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    args = ("--codex-bin", codex_bin, "--scripted", "--no-codex-events")
    call = {"name": "codex", "arguments": {"prompt": "hi"}}
    async with raw_session(state_dir, *args, "--workspace", str(workspace)) as session:
        hello = next(m for m in session.seen if m.get("id") == 2)
        assert "logging" in hello["result"]["capabilities"]
        await session.request("tools/call", call)
        assert session.notifications("notifications/message")  # info, by default
        before = len(session.notifications("notifications/message"))
        level = await session.request("logging/setLevel", {"level": "warning"})
        assert level.get("result") == {}, level
        await session.request("tools/call", call)
        assert len(session.notifications("notifications/message")) == before


async def test_a_long_turn_sends_progress_while_it_runs(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    script = write_script(tmp_path / "s.json", [{"delay": 3}, {"say": "late"}])
    args = ("--codex-bin", codex_bin, "--scripted", "--script", str(script))
    args += ("--progress-interval", "0.5", "--workspace", str(workspace))
    async with raw_session(state_dir, *args) as session:
        response = await session.request(
            "tools/call",
            {"name": "codex", "arguments": {"prompt": "x"}, "_meta": {"progressToken": "p1"}},
        )
        assert response["result"]["structuredContent"]["content"] == "late"
    beats = [
        n["params"]
        for n in session.notifications("notifications/progress")
        if n["params"]["progressToken"] == "p1" and n["params"]["message"].startswith("working")
    ]
    # ~6 in 3 s; at least 2 leaves room for a slow start on a loaded machine
    assert len(beats) >= 2, beats
    assert any("last event:" in b["message"] for b in beats)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--script", "s.json"], "error: --script plays on the scripted model: add --scripted."),
        (["--scripted", "--script", "missing.json"], "no such script file; check the path."),
    ],
)
def test_a_script_without_the_scripted_model_or_file_is_refused_at_start(
    state_dir: Path, tmp_path: Path, extra: list[str], error: str
) -> None:
    (tmp_path / "s.json").write_text("[]")
    done = run_cli(["--state-dir", str(state_dir), "serve", *extra], dict(os.environ), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert error in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def test_serve_can_use_the_users_codex_config_when_asked(
    state_dir: Path, workspace: Path, tmp_path: Path, codex_bin: str
) -> None:
    home = tmp_path / "my-codex"
    home.mkdir()
    (home / "config.toml").write_text('developer_instructions = "my own codex setup"\n')
    base = ("--codex-bin", codex_bin, "--scripted", "--workspace", str(workspace))
    seen = {}
    for name, extra in (("hermetic", ()), ("synced", ("--sync-codex-config",))):
        state = state_dir / name
        async with raw_session(state, *base, "--codex-home", str(home), *extra) as session:
            await session.request("tools/call", {"name": "codex", "arguments": {"prompt": "x"}})
        (log,) = state.glob("runs/*/model-requests.jsonl")
        seen[name] = "my own codex setup" in log.read_text()
    assert seen == {"hermetic": False, "synced": True}


async def test_a_mission_may_not_send_any_server_variable_to_its_provider(
    state_dir: Path, workspace: Path
) -> None:
    provider = {"base_url": "http://127.0.0.1:9/v1", "env_key": "AWS_SECRET_ACCESS_KEY"}
    mission = mission_data(workspace, [{"prompt": "x"}], provider=provider)
    said = {}
    for flags in ((), ("--allow-client-providers",)):
        async with raw_session(state_dir, "--workspace", str(workspace), *flags) as session:
            response = await session.request(
                "tools/call", {"name": "batch", "arguments": {"mission": mission}}
            )
        assert response["result"]["isError"] is True
        said[flags] = text_of(response)
    assert said[()] == (
        "refused by this server's policy: the mission's provider sends Codex's requests to "
        "http://127.0.0.1:9/v1, and clients may not choose the model provider; the server's "
        "owner can allow it with --allow-client-providers."
    )
    assert said[("--allow-client-providers",)] == (
        "refused by this server's policy: provider.env_key AWS_SECRET_ACCESS_KEY would send a "
        "variable of the server's to http://127.0.0.1:9/v1, and a client's provider never gets "
        "a credential of the server's; drop env_key, or the server's owner can share the variable "
        "with clients by --expose-var AWS_SECRET_ACCESS_KEY."
    )


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('pass_env = "FOO"', "option 'pass_env': Input should be a valid list."),
        ("progress_interval = 0", "option 'progress_interval': Input should be greater than"),
        ("bogus = 1", "unknown option 'bogus'; known: affinity_wait, allow_client_config,"),
    ],
)
def test_a_bad_serve_config_file_is_one_sentence_and_exit_2(
    state_dir: Path, tmp_path: Path, toml: str, error: str
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(f"[serve]\n{toml}\n")
    done = run_cli(
        ["--state-dir", str(state_dir), "serve", "--config", str(config)], dict(os.environ)
    )
    assert done.returncode == 2, done.stderr
    assert error in done.stderr and len(done.stderr.strip().splitlines()) == 1


async def test_an_approval_question_never_shows_the_runs_secrets(
    state_dir: Path, workspace: Path, codex_bin: str
) -> None:
    secret = "s3cr3t-deploy-value"
    task = {
        "id": "deploy",
        "prompt": "deploy",
        "approval_policy": "on-request",
        "env": {"DEPLOY_TOKEN": secret},
        "script": [{"escalate": f"echo {secret} > sent.txt"}, {"say": "done"}],
    }
    mission = mission_data(workspace, [task])
    asked: list[dict[str, Any]] = []

    def decline(request: dict[str, Any]) -> dict[str, Any]:
        asked.append(request["params"])
        return {"action": "decline"}

    args = ("--codex-bin", codex_bin, "--scripted", "--workspace", str(workspace))
    args += ("--allow-danger-full-access",)  # the owner lets clients approve escalations
    async with raw_session(state_dir, *args, capabilities={"elicitation": {}}) as session:
        response = await session.request(
            "tools/call", {"name": "batch", "arguments": {"mission": mission}}, decline
        )
    assert response["result"]["isError"] is False, response
    (question,) = asked
    assert secret not in json.dumps(question) and "[REDACTED]" in question["message"]
    assert not (workspace / "sent.txt").exists()


async def test_codex_reply_ignores_the_arguments_the_old_server_ignored(
    state_dir: Path, workspace: Path
) -> None:
    """async-codex-mcp sends the session's `cwd` with every codex-reply: 0.153.4 ignored it
    (and anything else it did not know), so the reply goes on; `codex` still refuses them. No
    second session_configured on a reply, and the first carries what 0.153.4's did."""
    async with raw_session(state_dir, "--scripted", "--workspace", str(workspace)) as session:
        first = await session.request(
            "tools/call", {"name": "codex", "arguments": {"prompt": "one", "cwd": str(workspace)}}
        )
        thread = first["result"]["structuredContent"]["threadId"]
        configured = [e["msg"] for e in events_of(session, session.next_id)]
        reply = await session.request(
            "tools/call",
            {
                "name": "codex-reply",
                "arguments": {"prompt": "two", "threadId": thread, "cwd": str(workspace), "x": 1},
            },
        )
        again = [e["msg"]["type"] for e in events_of(session, session.next_id)]
    assert reply["result"]["isError"] is False, reply
    assert reply["result"]["structuredContent"] == {"threadId": thread, "content": "echo: two"}
    session_configured = next(m for m in configured if m["type"] == "session_configured")
    assert session_configured["approval_policy"] == "on-request"  # 0.153.4's default
    assert session_configured["approvals_reviewer"] == "user"
    assert "session_configured" not in again and "task_complete" in again


def test_the_capture_shows_what_the_old_codex_reply_accepted() -> None:
    """The ground truth the drop-in follows (tests/data/old-mcp-server.jsonl, captured from
    0.153.4): codex-reply's schema is open and a reply with a `cwd` and an unknown argument
    went on, with no second session_configured."""
    messages = old_messages()
    tools = next(m for m in messages if m.get("id") == 10)["result"]["tools"]
    reply_schema = next(t for t in tools if t["name"] == "codex-reply")["inputSchema"]
    assert "additionalProperties" not in reply_schema
    assert set(reply_schema["properties"]) == {"prompt", "threadId", "conversationId"}
    reply = next(m for m in messages if m.get("id") == 12)["result"]
    assert "isError" not in reply and reply["structuredContent"]["content"] == "echo: again"
    configured = [
        m["params"]["_meta"]["requestId"]
        for m in messages
        if m.get("method") == "codex/event" and m["params"]["msg"]["type"] == "session_configured"
    ]
    assert 11 in configured and 12 not in configured
