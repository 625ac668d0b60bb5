"""Reading Codex's turn outcomes: which failures are worth a retry, and which command
failures mean the sandbox itself cannot start."""

from __future__ import annotations

import re
from typing import Any

# Errors a retry cannot fix: the request itself, the account, or a policy is the problem.
PERMANENT_ERRORS = {
    "badRequest",
    "unauthorized",
    "contextWindowExceeded",
    "sessionBudgetExceeded",
    "usageLimitExceeded",
    "cyberPolicy",
    "misalignmentPolicyViolation",
}
_CLIENT_STATUS = re.compile(r"\b(?:HTTP |status:? |status code )?(4(?:0[0-7]|1[0-8]|2[2-6]))\b")


def retryable_error(error: dict[str, Any]) -> bool:
    """Whether a failed turn is worth another attempt: rate limits, server errors and broken
    streams are; a bad request (any 4xx but 408 and 429), auth or policy refusal is not."""
    info = error.get("codexErrorInfo")
    if isinstance(info, str) and info in PERMANENT_ERRORS:
        return False
    if isinstance(info, dict):
        for detail in info.values():
            code = (detail or {}).get("httpStatusCode") if isinstance(detail, dict) else None
            if isinstance(code, int) and 400 <= code < 500 and code not in (408, 429):
                return False
    message = str(error.get("message", ""))
    return not (info == "other" and _CLIENT_STATUS.search(message) and "429" not in message)


SANDBOX_FAILURE = re.compile(r"bwrap: [^\n]*(?:namespace|Operation not permitted)[^\n]*")


def sandbox_failure(item: dict[str, Any]) -> str | None:
    """The bubblewrap error line when a sandboxed command could not even start."""
    if item.get("type") != "commandExecution" or item.get("exitCode") in (0, None):
        return None
    match = SANDBOX_FAILURE.search(str(item.get("aggregatedOutput") or ""))
    return match.group(0) if match else None
