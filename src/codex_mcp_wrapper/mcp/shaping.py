"""Tool results in the shapes MCP clients expect: the removed ``codex`` tool's
``{threadId, content}``, the original ``batch`` contract, JSON results and error results."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from codex_mcp_wrapper.engine.results import RunSummary, TaskDiff, TaskResult

# The `codex` tool's approval policy when a call gives none: codex mcp-server 0.153.4's.
CODEX_TOOL_APPROVAL = "on-request"


class CodexOutput(BaseModel):
    threadId: str
    content: str
    # What the session changed, when it ran in a worktree of its own (isolation: worktree):
    # files, insertions, deletions, patch (a file `git apply` takes), branch.
    diff: TaskDiff | None = None


def _structured(result: TaskResult, content: str) -> dict[str, Any]:
    out: dict[str, Any] = {"threadId": result.thread_id or "", "content": content}
    if result.diff is not None:
        out["diff"] = result.diff.model_dump(mode="json")
    return out


def codex_result(result: TaskResult) -> CallToolResult:
    content = result.final_message or ""
    if result.status != "ok":
        text = result.error or f"the Codex turn ended {result.status}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=_structured(result, content or text),
            is_error=True,
        )
    return CallToolResult(
        content=[TextContent(type="text", text=content)],
        structured_content=_structured(result, content),
    )


class ReviewOutput(BaseModel):
    threadId: str
    content: str
    findings: list[dict[str, Any]]
    overall_correctness: str | None = None
    overall_explanation: str | None = None


def review_result(result: TaskResult) -> CallToolResult:
    """A review task's result: ``codex_result`` plus its findings."""
    shaped = codex_result(result)
    review = result.review
    assert shaped.structured_content is not None
    shaped.structured_content.update(
        findings=[f.model_dump(mode="json") for f in review.findings] if review else [],
        overall_correctness=review.overall_correctness if review else None,
        overall_explanation=review.overall_explanation if review else None,
    )
    return shaped


def batch_result(summary: RunSummary) -> dict[str, Any]:
    """The ``batch`` contract of the original wrapper design."""
    results, errors = [], []
    for task in summary.tasks:
        results.append(
            {
                "task_index": task.index,
                "task_id": task.task_id,
                "worker": task.worker,
                "status": task.status,
                "stdout": task.final_message or "",
                "output": task.final_message or "",
                "threadId": task.thread_id,
                "conversationId": task.thread_id,
                "duration_ms": task.duration_ms,
                "artifacts": task.artifacts,
                **({"diff": task.diff.model_dump(mode="json")} if task.diff else {}),
            }
        )
        if task.status != "ok":
            errors.append(
                {
                    "task_index": task.index,
                    "task_id": task.task_id,
                    "status": task.status,
                    "message": task.error or f"the task ended {task.status}",
                }
            )
    return {
        "mission_id": summary.mission_id,
        "run_id": summary.run_id,
        "status": summary.status,
        "results": results,
        "errors": errors,
    }


def json_result(data: Any) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data, indent=2))],
        structured_content=data if isinstance(data, dict) else {"items": data},
    )


def error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
