"""Reading Codex's turn outcomes: which failures are worth a retry, which notifications say
Codex is retrying the model (not progress), and which command failures mean the sandbox
itself cannot start."""

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
# Codex refuses a request's own content with the JSON-RPC "invalid params" error: a prompt over
# its input limit answers turn/start with -32602, data.input_error_code "input_too_large" and
# "Input exceeds the maximum length of 1048576 characters." (measured on 0.163.0).
INVALID_PARAMS = -32602
INPUT_TOO_LARGE = "input exceeds the maximum length"


def retryable_error(error: dict[str, Any]) -> bool:
    """Whether a failed turn is worth another attempt: rate limits, server errors and broken
    streams are; a bad request (any 4xx but 408 and 429), an input over Codex's limit, auth or
    policy refusal is not. ``error`` is a turn's error, or a JSON-RPC error (code, message,
    data) that Codex answered a turn request with."""
    if error.get("code") == INVALID_PARAMS:
        return False
    if INPUT_TOO_LARGE in str(error.get("message", "")).lower():
        return False
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


def retry_notice(method: str, params: dict[str, Any]) -> str | None:
    """What Codex says when it retries a model request (an ``error`` notification with
    ``willRetry``: "Reconnecting... 2/5", "Reconnecting... waiting for network"), with its
    cause; None for any other notification."""
    if method != "error" or not params.get("willRetry"):
        return None
    error = params.get("error") or {}
    message = str(error.get("message") or "Codex retries the model request")
    details = error.get("additionalDetails")
    return f"{message} ({details})" if details else message


SANDBOX_FAILURE = re.compile(r"bwrap: [^\n]*(?:namespace|Operation not permitted)[^\n]*")


def sandbox_failure(item: dict[str, Any]) -> str | None:
    """The bubblewrap error line when a sandboxed command could not even start."""
    if item.get("type") != "commandExecution" or item.get("exitCode") in (0, None):
        return None
    match = SANDBOX_FAILURE.search(str(item.get("aggregatedOutput") or ""))
    return match.group(0) if match else None


# What to check when a model provider cannot be reached (a task's error, `doctor`'s line).
REACH_ADVICE = (
    "check that it is running and listening at that address and that this machine can reach it "
    "(network, proxy, firewall)"
)
OWN_PROVIDER_ADVICE = (
    "check that this machine can reach api.openai.com (network, HTTPS_PROXY, firewall), or "
    "use --scripted or a mission provider"
)


def unreachable_sentence(url: str | None, seconds: float, retries: int, last: str) -> str:
    """The one sentence of a task whose model Codex could not reach: the URL and what to check."""
    where = f"the model provider at {url}" if url else "Codex's own model provider (OpenAI)"
    advice = REACH_ADVICE if url else OWN_PROVIDER_ADVICE
    return (
        f"{where} could not be reached for {seconds:g} s (Codex retried {retries} time(s), "
        f"last: {last}): {advice}."
    )
