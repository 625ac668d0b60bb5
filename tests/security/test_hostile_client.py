"""A hostile MCP client against ``serve`` on default flags, over stdio and HTTP: every attack of
the trust-boundary trial is refused with one sentence naming the rule and the option that would
allow it, nothing leaks, nothing is created, and the server goes on serving.

docs/security.md lists each attack with the case id it has here."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import types as mt

from tests.helpers.mcp_matrix import Cell
from tests.security.conftest import API_KEY, DB_URL, serving, text

pytestmark = pytest.mark.anyio
REFUSE_WITHIN = 30.0  # seconds: a refusal reads no more than it must (a full read of
# /dev/zero or an alias bomb takes minutes), generous for a loaded CI machine

ALIAS_BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    + ["tasks: [{prompt: *a9}]"]
)


def listener() -> socket.socket:
    """A socket a hostile client wants the server's credentials sent to."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


def cases(hub: Path, outside: Path, sink: int) -> list[tuple[str, str, dict[str, Any], str]]:
    """(case id, tool, arguments, what the refusal must say)."""
    sink_url = f"http://127.0.0.1:{sink}/v1"

    def mission(**task: Any) -> dict[str, Any]:
        return {"mission": {"tasks": [{"prompt": "p", **task}]}}

    return [
        (
            "provider-env-key",
            "batch",
            {
                "mission": {
                    "provider": {"base_url": sink_url, "env_key": "OPENAI_API_KEY"},
                    "tasks": [{"prompt": "p"}],
                }
            },
            "--allow-client-providers",
        ),
        ("env-var", "batch", mission(prompt="${DATABASE_URL}"), "DATABASE_URL is not set"),
        (
            "stdio-mcp-server",
            "batch",
            mission(mcp_servers={"x": {"command": "sh", "args": ["-c", "id"]}}),
            "--allow-mission-commands",
        ),
        (
            "mcp-bearer-env",
            "batch",
            mission(mcp_servers={"x": {"url": sink_url, "bearer_token_env_var": "OPENAI_API_KEY"}}),
            "gets no credential of the server's",
        ),
        ("verify", "batch", mission(expect={"verify": "id"}), "--allow-mission-commands"),
        (
            "hook",
            "batch",
            {"mission": {"hooks": [{"on": "run_start", "run": "id"}], "tasks": [{"prompt": "p"}]}},
            "--allow-mission-commands",
        ),
        (
            "tool",
            "batch",
            mission(tools=[{"name": "t", "description": "d", "run": "id"}]),
            "--allow-mission-commands",
        ),
        (
            "danger-batch",
            "batch",
            mission(sandbox="danger-full-access"),
            "--allow-danger-full-access",
        ),
        (
            "danger-codex",
            "codex",
            {"prompt": "p", "sandbox": "danger-full-access"},
            "--allow-danger-full-access",
        ),
        (
            "config-provider",
            "codex",
            {"prompt": "p", "config": {"model_provider": "evil"}},
            "--allow-client-config",
        ),
        (
            "config-shell-env",
            "batch",
            mission(config={"shell_environment_policy": {"inherit": "all"}}),
            "--allow-client-config",
        ),
        (
            "workspace-etc",
            "batch",
            {"mission": {"workspace_root": "/etc", "tasks": [{"prompt": "p"}]}},
            "--allow-workspace",
        ),
        (
            "workspace-symlink",
            "batch",
            {"mission": {"workspace_root": "escape", "tasks": [{"prompt": "p"}]}},
            "--allow-workspace",
        ),
        ("mission-shadow", "batch", {"mission": "/etc/shadow"}, "--allow-workspace"),
        ("mission-zero", "mission_start", {"mission": "/dev/zero"}, "--allow-workspace"),
        ("mission-not-yaml", "batch", {"mission": "secrets.txt"}, "not a .yaml"),
        ("mission-fifo", "batch", {"mission": "pipe.yaml"}, "not a regular file"),
        ("alias-bomb", "batch", {"mission": "bomb.yaml"}, "aliases expand"),
        ("script-outside", "batch", mission(script="/etc/passwd"), "--allow-workspace"),
        ("cwd-outside", "codex", {"prompt": "p", "cwd": str(outside / "new")}, "--allow-workspace"),
        ("cwd-missing", "codex", {"prompt": "p", "cwd": str(hub / "new")}, "never creates"),
    ]


async def test_every_attack_is_refused_fast_in_one_sentence_naming_the_option(
    transport: Cell, state_dir: Path, served_dir: Path, tmp_path: Path, codex_bin: str
) -> None:
    (served_dir / "escape").symlink_to("/etc")
    (served_dir / "secrets.txt").write_text(f"password: {DB_URL}\n")
    (served_dir / "bomb.yaml").write_text(ALIAS_BOMB)
    os.mkfifo(served_dir / "pipe.yaml")
    outside = tmp_path / "outside"
    sink = listener()
    failures = []
    with sink, serving(transport, state_dir, served_dir, codex_bin, "--scripted") as server:
        async with server.client() as client:
            for case, tool, arguments, must_say in cases(
                served_dir, outside, sink.getsockname()[1]
            ):
                started = time.monotonic()
                result = await client.call_tool(tool, arguments)
                took = time.monotonic() - started
                said = text(result)
                problems = [
                    problem
                    for problem, bad in [
                        ("not an error", not result.is_error),
                        (f"does not say {must_say!r}", must_say not in said),
                        ("more than one sentence", said.count(". ") > 0 or "\n" in said),
                        ("shows a secret", API_KEY in said or "hunter2" in said),
                        ("quotes /etc", "root:" in said),
                        (f"took {took:.1f} s", took > REFUSE_WITHIN),
                    ]
                    if bad
                ]
                if problems:
                    failures.append(f"{case}: {', '.join(problems)}: {said}")
            # The server still serves after all that.
            ok = await client.call_tool("codex", {"prompt": "still here"})
        with pytest.raises(BlockingIOError):
            sink.accept()  # nobody connected to the hostile listener
    assert not failures, "\n".join(failures)
    assert not ok.is_error and "still here" in text(ok)
    assert not outside.exists() and not (served_dir / "new").exists()


async def test_an_alias_bomb_does_not_hold_up_other_clients(
    state_dir: Path, served_dir: Path, codex_bin: str
) -> None:
    (served_dir / "bomb.yaml").write_text(ALIAS_BOMB)
    with serving("http", state_dir, served_dir, codex_bin, "--scripted") as server:
        async with server.client() as hostile, server.client() as other:
            bombs = [hostile.call_tool("batch", {"mission": "bomb.yaml"}) for _ in range(5)]
            results = await asyncio.gather(*bombs, other.call_tool("runs_list", {}))
    assert all(r.is_error for r in results[:5])
    assert not results[5].is_error


async def test_an_escalation_is_declined_without_asking_the_client(
    state_dir: Path, served_dir: Path, tmp_path: Path, codex_bin: str
) -> None:
    """A command asking to leave the sandbox runs outside it once approved: on default flags
    the server declines it itself, whatever the client would answer."""
    asked: list[str] = []
    target = tmp_path / "escaped.txt"

    async def approve(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        asked.append(params.message)
        return mt.ElicitResult(action="accept", content={"approve": True})

    mission = {
        "approvals": {"default": "accept"},  # the client's own rules cannot let it out either
        "tasks": [
            {
                "prompt": "p",
                "sandbox": "workspace-write",
                "approval_policy": "on-request",
                "script": [{"escalate": f"touch {target}"}, {"say": "after: {last_output}"}],
            }
        ],
    }
    with serving("stdio", state_dir, served_dir, codex_bin, "--scripted") as server:
        async with server.client(elicitation_callback=approve, mode="legacy") as client:
            result = await client.call_tool("batch", {"mission": mission})
    assert not result.is_error, text(result)
    assert asked == []
    assert not target.exists()


async def test_commands_codex_runs_see_no_credential_of_the_server(
    transport: Cell, state_dir: Path, served_dir: Path, codex_bin: str
) -> None:
    """The API key is not in the commands' environment (nor the prompt's ${...}); redaction
    catches its plain, reversed and base64 forms besides."""
    script = [
        {"shell": 'env; printf %s "$OPENAI_API_KEY" | base64'},
        {"say": "env said: {last_output}"},
    ]
    mission = {"tasks": [{"prompt": "p", "sandbox": "workspace-write", "script": script}]}
    with serving(transport, state_dir, served_dir, codex_bin, "--scripted") as server:
        async with server.client() as client:
            result = await client.call_tool("batch", {"mission": mission})
            echoed = await client.call_tool("codex", {"prompt": "key: ${OPENAI_API_KEY}"})
    said = text(result)
    assert not result.is_error, said
    assert "PATH=" in said and "OPENAI_API_KEY" not in said and API_KEY not in said
    assert "key: ${OPENAI_API_KEY}" in text(echoed)  # the client's text, not a variable


async def test_a_client_provider_never_receives_the_servers_key(
    state_dir: Path, served_dir: Path, codex_bin: str
) -> None:
    """Even where the owner lets clients choose a provider, what reaches it carries no
    credential of the server's."""
    heard: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno")
        await writer.drain()
        writer.close()

    sink = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = sink.sockets[0].getsockname()[1]
    mission = {
        "provider": {"base_url": f"http://127.0.0.1:{port}/v1", "model": "m"},
        "tasks": [{"prompt": "p", "retries": 0}],
    }
    async with sink:
        with serving(
            "stdio", state_dir, served_dir, codex_bin, "--allow-client-providers"
        ) as server:
            async with server.client() as client:
                result = await client.call_tool("batch", {"mission": mission})
    assert not result.is_error, text(result)  # the run is reported (its task failed)
    assert heard, "Codex never reached the client's provider"
    for request in heard:
        assert API_KEY.encode() not in request and b"authorization" not in request.lower()
