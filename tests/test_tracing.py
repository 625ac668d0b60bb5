"""Item 27.4 traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, a local run is one trace (run ->
task -> attempt -> turn -> command / tool call), and a mission run through Temporal is one
trace holding the submitter's spans and the host's, down to the turns and commands of each
attempt; all received on a test's OTLP endpoint, with no secret in any of them."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_wrapper.codex.telemetry import FLUSH_WITHIN
from tests.helpers.cli import REPO, run_cli
from tests.helpers.mcp_client import stdio_client
from tests.helpers.missions import write_mission
from tests.helpers.otlp import ReceivedSpan, otlp_receiver
from tests.helpers.temporal import temporal_rig

TRACE_TIMEOUT = 60  # spans leave in batches every 0.2 s; the host's come with its attempts
SECRET = "sekrit-token-4242"
FS_SERVER = REPO / "examples" / "mcp-smoke" / "fs_server.py"


def texts_of(spans: Iterable[ReceivedSpan]) -> str:
    """Everything a span carries that could hold a secret: names, attributes, statuses."""
    return "\n".join(f"{s.name} {s.status_message} {sorted(s.attributes.items())}" for s in spans)


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def chain(spans: list[ReceivedSpan], span: ReceivedSpan) -> list[str]:
    """The names from ``span`` up to its trace's root."""
    by_id = {s.span_id: s for s in spans}
    names = [span.name]
    while span.parent_id:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def secret_task(**fields: Any) -> dict[str, Any]:
    """A task whose command holds the secret of its env (the run's redactor knows it)."""
    return {
        "id": "work",
        "prompt": "write the token",
        "env": {"API_TOKEN": SECRET},
        "script": [{"shell": f"echo {SECRET} > token.txt"}, {"say": "wrote it"}],
        **fields,
    }


def test_a_local_run_is_one_trace_from_the_run_down_to_its_commands_and_tool_calls(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("TODO one\n")
    fs = {"command": sys.executable, "args": [str(FS_SERVER)], "env": {"FS_SERVER_ROOT": str(ws)}}
    grep = {"tool": {"server": "fs", "name": "grep", "arguments": {"pattern": "TODO"}}}
    tasks = [
        secret_task(follow_ups=["again"]),
        {"id": "grep", "prompt": "grep", "script": [grep, {"say": "found"}]},
        {
            "id": "ask",
            "prompt": "ask",
            "tools": [{"name": "ask_orchestrator", "description": "Ask.", "run": "echo yes"}],
            "script": [{"tool": {"name": "ask_orchestrator"}}, {"say": "got {last_output}"}],
        },
        {"id": "broken", "prompt": "fail", "retries": 0, "script": [{"fail": 400}]},
        {
            "id": "stuck",
            "prompt": "hang",
            "retries": 0,
            "idle_timeout_sec": 1,
            "script": [{"shell": "true"}, {"hang": 60}],
        },
    ]
    path = write_mission(
        tmp_path / "m.yaml",
        ws,
        tasks,
        provider="scripted",
        defaults={"sandbox": "workspace-write", "mcp_servers": {"fs": fs}},
    )
    with otlp_receiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        done = run_cli(["run", str(path), "--json"], env)
        assert done.returncode == 1, done.stderr  # the broken task failed
        summary = json.loads(done.stdout)
        run_name = f"run {summary['run_id']}"
        receiver.wait(lambda r: any(s.name == run_name for s in r.spans), "run span", 10)
        ours = [s for s in receiver.spans if s.service == "codex-mcp-wrapper"]
        everything = list(receiver.spans)
    assert [t["status"] for t in summary["tasks"]] == ["ok", "ok", "ok", "failed", "timeout"]
    assert (ws / "token.txt").read_text().strip() == SECRET  # the command ran with it
    assert {s.trace_id for s in ours} == {one(ours, run_name).trace_id}  # one trace
    assert one(ours, run_name).parent_id == ""  # its root
    # run -> task -> attempt -> turn -> command / tool call, in time order
    work = [s for s in ours if s.attributes.get("task.id") == "work"]
    command = one(work, "command")
    assert chain(ours, command) == ["command", "turn 1", "attempt work", "task work", run_name]
    assert command.attributes["process.command_line"] == "echo [REDACTED] > token.txt"
    assert command.attributes["process.exit.code"] == 0 and not command.error
    turn = one(work, "turn 1")
    assert turn.start_ns <= command.start_ns <= command.end_ns <= turn.end_ns
    assert turn.attributes["codex.turn.status"] == "completed" and not turn.error
    assert turn.attributes["gen_ai.usage.input_tokens"] > 0
    assert chain(ours, one(work, "turn 2"))[1:3] == ["attempt work", "task work"]
    tool = one(ours, "tool fs.grep")
    assert chain(ours, tool)[1:] == ["turn 1", "attempt grep", "task grep", run_name]
    assert tool.attributes["codex.item.status"] == "completed" and not tool.error
    asked = one(ours, "tool ask_orchestrator")  # a tool of the mission's, answered here
    assert chain(ours, asked)[1:] == ["turn 1", "attempt ask", "task ask", run_name]
    assert not asked.error, asked
    # a failed turn fails its attempt, its task and the run
    failed = [s for s in ours if s.attributes.get("task.id") == "broken"]
    assert {s.name for s in failed if s.error} >= {"turn 1", "attempt broken", "task broken"}
    # a turn interrupted at its idle deadline ends in error, its command done before
    stuck = [s for s in ours if s.attributes.get("task.id") == "stuck"]
    cut = one(stuck, "turn 1")
    assert cut.error and cut.attributes["codex.turn.status"] == "interrupted", cut
    assert chain(ours, one(stuck, "command"))[1:3] == ["turn 1", "attempt stuck"]
    assert one(ours, run_name).error
    # Codex's own spans of each turn (it continues the trace turn/start carries) hang under
    # the attempt that asked for the turn
    codex = [s for s in everything if s.service == "codex-app-server"]
    joined = [s for s in codex if s.trace_id == one(ours, run_name).trace_id]
    codex_ids = {s.span_id for s in joined}
    attempts = {s.span_id: s.name for s in ours if s.name.startswith("attempt ")}
    tops = {attempts.get(s.parent_id, s.parent_id) for s in joined if s.parent_id not in codex_ids}
    assert tops == {f"attempt {t}" for t in ("work", "grep", "ask", "broken", "stuck")}, tops
    # the secret reached none of the spans, ours or Codex's own
    assert SECRET not in texts_of(everything)


def test_a_temporal_run_is_one_trace_with_the_submitters_and_the_hosts_spans(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with otlp_receiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        with temporal_rig(tmp_path / "rig", env) as rig:
            rig.start_host("A")
            tasks = [secret_task(id="t1"), {"id": "t2", "prompt": "two"}]
            path = write_mission(
                tmp_path / "m.yaml",
                tmp_path / "ws",
                tasks,
                provider="scripted",
                defaults={"sandbox": "workspace-write"},
            )
            submitted = run_cli(["run", str(path), "--json", *rig.flags()], env)
            assert submitted.returncode == 0, submitted.stderr
            assert json.loads(submitted.stdout)["tasks"][0]["status"] == "ok"
            # the mission's trace (the submitter's queries of its events are traces of their own)
            spans = receiver.wait_for_trace(
                {
                    ("codex-mcp-wrapper-submitter", "StartWorkflow:MissionWorkflow"),
                    ("codex-mcp-wrapper-host", "RunWorkflow:MissionWorkflow"),
                    ("codex-mcp-wrapper-host", "RunActivity:run_task"),
                    ("codex-mcp-wrapper-host", "command"),
                },
                TRACE_TIMEOUT,
                at_least={"RunActivity:run_task": 2},  # a host's spans end in this order:
            )  # command, turn, attempt, activity; and are exported in that order
            mission = spans[0].trace_id
            receiver.wait(  # Codex exports its own in batches of its own, a few seconds apart
                lambda r: any(
                    s.service == "codex-app-server" for s in r.spans if s.trace_id == mission
                ),
                "Codex's spans in the mission's trace",
                TRACE_TIMEOUT,
            )
            everything = list(receiver.spans)
    tasks_run = [s for s in spans if s.name == "RunActivity:run_task"]
    assert len(tasks_run) == 2, spans  # each task's attempt, in the mission's trace
    attempts = sorted(s.name for s in spans if s.service == "codex-mcp-wrapper-host")
    assert "attempt t1" in attempts and "attempt t2" in attempts, attempts
    # the attempt's turn and command on the host, under its attempt span, in the same trace
    command = one(spans, "command")
    assert chain(spans, command)[:4] == ["command", "turn 1", "attempt t1", "RunActivity:run_task"]
    assert chain(spans, command)[-1] == "StartWorkflow:MissionWorkflow"  # the submitter's
    assert command.attributes["process.command_line"] == "echo [REDACTED] > token.txt"
    turns = [s for s in spans if s.name == "turn 1"]
    assert sorted(chain(spans, s)[1] for s in turns) == ["attempt t1", "attempt t2"]
    # Codex's spans of a turn on the host hang under the host's attempt span too (its workers
    # still run: the spans it has not exported yet are the parents of some received)
    joined = [s for s in everything if s.service == "codex-app-server" and s.trace_id == mission]
    attempts = {s.span_id: s.name for s in spans if s.name.startswith("attempt ")}
    assert {attempts[s.parent_id] for s in joined if s.parent_id in attempts}, joined[:5]
    assert SECRET not in texts_of(everything)


def test_codex_sends_its_own_telemetry_to_the_same_endpoint(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with otlp_receiver() as receiver:
        env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        path = write_mission(
            tmp_path / "m.yaml",
            tmp_path / "ws",
            [{"id": "t1", "prompt": "one"}],
            provider="scripted",
        )
        done = run_cli(["run", str(path), "--json"], env)
        assert done.returncode == 0, done.stderr
        # Codex's spans (its app-server requests) and its log events, from its own config
        receiver.wait(
            lambda r: any(s.service == "codex-app-server" for s in r.spans),
            "span from Codex",
            TRACE_TIMEOUT,
        )
        receiver.wait(lambda r: "/v1/logs" in r.posts, "log export from Codex", TRACE_TIMEOUT)


@pytest.mark.anyio
async def test_serve_makes_one_trace_per_run_of_its_mcp_calls(
    tmp_path: Path, workspace: Path, codex_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_BIN", codex_bin)  # the server's environment is this one
    mission = {
        "workspace_root": str(workspace),
        "tasks": [{"id": "one", "prompt": "one", "script": [{"shell": "true"}, {"say": "ok"}]}],
    }
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        async with stdio_client(tmp_path / "served", "--scripted") as client:
            for _ in range(2):
                done = await client.call_tool("batch", {"mission": mission})
                assert (done.structured_content or {}).get("status") == "ok", done
            receiver.wait(
                lambda r: sum(s.name.startswith("run ") for s in r.spans) == 2, "two runs", 10
            )
            ours = [s for s in receiver.spans if s.service == "codex-mcp-wrapper"]
    roots = [s for s in ours if s.name.startswith("run ")]
    assert len({s.trace_id for s in roots}) == 2 and all(not s.parent_id for s in roots)
    # each linked to the MCP SDK's span of the call that ran it (a trace of its own)
    calls = {s.span_id for s in ours if s.name == "tools/call batch"}
    assert [len(calls.intersection(root.links)) for root in roots] == [1, 1]
    for root in roots:
        trace = [s for s in ours if s.trace_id == root.trace_id]
        command = one(trace, "command")
        assert chain(trace, command) == ["command", "turn 1", "attempt one", "task one", root.name]


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_collector_that_is_down_neither_slows_the_run_nor_holds_its_exit_up_for_long(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # Exporting from the event loop held up the run ~6 s per span (the exporter's retries):
    # this run took 76 s instead of 1.5 s. Now spans leave from a thread of their own.
    tasks = [secret_task(follow_ups=["again"]), {"id": "t2", "prompt": "two"}]
    path = write_mission(tmp_path / "m.yaml", tmp_path / "ws", tasks, provider="scripted")
    env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{refused_port()}"}
    started = time.monotonic()
    done = run_cli(["run", str(path), "--json"], env)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["duration_ms"] < 20_000, summary  # the run itself: not held up
    # the exit waits at most FLUSH_WITHIN for the spans left (plus the process's start-up)
    assert took < summary["duration_ms"] / 1000 + FLUSH_WITHIN + 15, took
