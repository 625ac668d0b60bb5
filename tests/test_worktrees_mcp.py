"""The MCP ``codex`` tool with ``isolation: worktree`` returns the session's change as a diff
(structured content), and ``codex-reply`` continues in it; the real Codex on the scripted
model behind ``serve --scripted``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.mcp_client import stdio_client
from tests.test_worktrees import make_repo, user_state

pytestmark = pytest.mark.anyio


async def test_the_codex_tool_returns_the_diff_and_codex_reply_continues_in_the_worktree(
    tmp_path: Path, state_dir: Path, codex_bin: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    before = user_state(repo)
    script = tmp_path / "script.yaml"
    script.write_text(
        '- shell: "echo first >> log.txt"\n- say: wrote\n'
        '- shell: "echo second >> log.txt && cat log.txt"\n- say: "{last_output}"\n'
    )
    args = ("--scripted", "--script", str(script), "--workspace", str(repo))
    async with stdio_client(state_dir, *args) as client:
        first = await client.call_tool(
            "codex", {"prompt": "log", "sandbox": "workspace-write", "isolation": "worktree"}
        )
        assert not first.is_error, first.content
        out = first.structured_content
        assert out is not None and out["content"] == "wrote"
        diff = out["diff"]
        assert (diff["files"], diff["insertions"], diff["deletions"]) == (["log.txt"], 1, 0)
        assert diff["branch"].startswith("codex-mcp-wrapper/")
        assert "+first" in Path(diff["patch"]).read_text()
        second = await client.call_tool(
            "codex-reply", {"prompt": "more", "threadId": out["threadId"]}
        )
        assert not second.is_error, second.content
        again = second.structured_content
        assert again is not None and again["content"].endswith("first\nsecond\n")
        assert again["diff"]["insertions"] == 2
        listed = (await client.call_tool("runs_list", {})).structured_content
        assert listed is not None
        reply_run, first_run = (r["run_id"] for r in listed["runs"][:2])
        applied = await client.call_tool("runs_apply", {"run_id": reply_run, "task_id": "codex"})
        assert not applied.is_error, applied.content
        assert (repo / "log.txt").read_text() == "first\nsecond\n"
        clash = await client.call_tool("runs_apply", {"run_id": first_run, "task_id": "codex"})
        assert clash.is_error
        assert "(conflicts: log.txt); nothing was changed." in clash.content[0].text  # type: ignore[union-attr]
        (repo / "log.txt").unlink()
        plain = await client.call_tool("codex", {"prompt": "no isolation"})
        assert plain.structured_content is not None and "diff" not in plain.structured_content
    assert user_state(repo) == before
