"""The drop-in for the removed ``codex mcp-server``, driven as its clients drove it: a raw
JSON-RPC client speaking 2025-06-18 over stdio (tests/helpers/mcp_client.py ``raw_session``),
compared with what 0.153.4 itself sent (tests/data/old-mcp-server.jsonl, captured with
scripts/capture_old_mcp_server.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mcp_client import raw_session

pytestmark = pytest.mark.anyio
OLD_CAPTURE = Path(__file__).parent / "data" / "old-mcp-server.jsonl"


def old_messages() -> list[dict[str, Any]]:
    return [json.loads(line) for line in OLD_CAPTURE.read_text().splitlines()]


def text_of(response: dict[str, Any]) -> str:
    return str(response["result"]["content"][0]["text"])


async def test_the_codex_tool_refuses_unknown_and_invalid_arguments_in_one_sentence(
    state_dir: Path, workspace: Path
) -> None:
    # what the old server answered to a misspelled argument
    old = next(m for m in old_messages() if m.get("id") == 9)["result"]
    assert old["isError"] is True and "unknown field `approval_policy`" in text_of({"result": old})
    async with raw_session(state_dir, "--scripted", "--workspace", str(workspace)) as session:
        tools = (await session.request("tools/list", {}))["result"]["tools"]
        for tool in tools:
            schema = tool["inputSchema"]
            assert schema["additionalProperties"] is False, tool["name"]
            for name, prop in schema["properties"].items():
                assert prop.get("description"), f"{tool['name']}.{name} has no description"
        codex = next(t for t in tools if t["name"] == "codex")
        assert "profile" not in codex["inputSchema"]["properties"]  # 0.153.4 had none either

        async def refused(arguments: dict[str, Any]) -> str:
            response = await session.request(
                "tools/call", {"name": "codex", "arguments": arguments}
            )
            assert response["result"]["isError"] is True, response
            text = text_of(response)
            assert "\n" not in text and "validation error" not in text, text
            return text

        misspelled = await refused({"prompt": "x", "approval_policy": "never"})
        assert misspelled.startswith(
            "codex does not take the argument `approval_policy` "
            "(did you mean `approval-policy`?); it takes `prompt`"
        )
        assert await refused({"prompt": "x", "sandbox": "bogus"}) == (
            "codex: argument `sandbox`: 'bogus' is not one of "
            "['read-only', 'workspace-write', 'danger-full-access']."
        )
        assert await refused({"sandbox": "read-only"}) == "codex: 'prompt' is a required property."
        # nothing ran: a refused call starts no run
        runs = await session.request("tools/call", {"name": "runs_list", "arguments": {}})
        assert runs["result"]["structuredContent"]["runs"] == []
