"""Capture what the removed `codex mcp-server` (npm @openai/codex@0.153.4) sends during calls.

Drives it with a raw JSON-RPC client speaking 2025-06-18 (as its clients did), against the
scripted model: a call whose script runs a shell command, then one that asks for approval
(answered with the old `{"decision": "approved"}`), a misspelled argument, `tools/list`, a call
without `approval-policy` and a `codex-reply` with arguments it does not take, and prints every
message it sent, as JSON lines. tests/data/old-mcp-server.jsonl was captured with it; the tests compare our drop-in's
`codex/event` notifications and approval requests with that capture.

    python scripts/capture_old_mcp_server.py OLD_CODEX_BIN > tests/data/old-mcp-server.jsonl
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.codex.home import CodexHomeSpec, scripted_provider, write_codex_home
from codex_mcp_wrapper.scripted import ScriptedModel
from codex_mcp_wrapper.scripted.script import parse_script
from codex_mcp_wrapper.settings import Settings

TIMEOUT = 60


async def capture(old_codex: str, root: Path) -> list[dict[str, Any]]:
    model = ScriptedModel()
    model.add_script("shell", parse_script([{"shell": "echo hi"}, {"say": "ran: {last_output}"}]))
    model.add_script(
        "ask", parse_script([{"escalate": "touch approved.txt"}, {"say": "after approval"}])
    )
    seen: list[dict[str, Any]] = []
    async with model.serve() as url:
        home = root / "home"
        write_codex_home(home, CodexHomeSpec(scripted_provider(url), trusted_projects=[root]))
        env = {**Settings().worker_base_env(), "CODEX_HOME": str(home)}
        proc = await asyncio.create_subprocess_exec(
            old_codex, "mcp-server", stdin=-1, stdout=-1, stderr=-3, env=env, cwd=root
        )
        assert proc.stdin is not None and proc.stdout is not None

        async def send(message: dict[str, Any]) -> None:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            await proc.stdin.drain()

        async def until_response(request_id: int) -> dict[str, Any]:
            assert proc.stdout is not None
            while True:
                line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
                message = json.loads(line)
                seen.append(message)
                if message.get("method") == "elicitation/create":
                    await send(
                        {"jsonrpc": "2.0", "id": message["id"], "result": {"decision": "approved"}}
                    )
                elif message.get("id") == request_id and "method" not in message:
                    return message

        await send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"elicitation": {}},
                    "clientInfo": {"name": "capture", "version": "0"},
                },
            }
        )
        await until_response(1)
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        for n, (script, policy, sandbox) in enumerate(
            [("shell", "never", "workspace-write"), ("ask", "on-request", "read-only")], start=2
        ):
            await send(
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "tools/call",
                    "params": {
                        "name": "codex",
                        "arguments": {
                            "prompt": f"do {script}",
                            "model": f"scripted@{script}",
                            "cwd": str(root),
                            "approval-policy": policy,
                            "sandbox": sandbox,
                        },
                    },
                }
            )
            await until_response(n)
        await send(
            {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {
                    "name": "codex",
                    "arguments": {"prompt": "x", "approval_policy": "never"},
                },
            }
        )
        await until_response(9)
        # What the drop-in must match besides: the tools' schemas, a call without
        # approval-policy (its default), and a codex-reply carrying arguments it does not
        # take (async-codex-mcp sends the session's cwd), which 0.153.4 ignored.
        await send({"jsonrpc": "2.0", "id": 10, "method": "tools/list", "params": {}})
        await until_response(10)
        call = {"name": "codex", "arguments": {"prompt": "plain", "cwd": str(root)}}
        await send({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": call})
        thread = (await until_response(11))["result"]["structuredContent"]["threadId"]
        reply = {"prompt": "again", "threadId": thread, "cwd": str(root), "unknown": 1}
        params = {"name": "codex-reply", "arguments": reply}
        await send({"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": params})
        await until_response(12)
        proc.stdin.close()
        await proc.wait()
    return seen


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cmw-capture-") as tmp:
        for message in asyncio.run(capture(sys.argv[1], Path(tmp).resolve())):
            print(json.dumps(message))


if __name__ == "__main__":
    main()
