"""What the scripted model answers to one Responses API request: pure logic, no I/O.

Each thread (Codex sends its id in the ``thread-id``/``session-id`` header) plays its script from
the start. A cursor per thread remembers the next step; a thread first seen by this process (a
resumed thread, a restarted model) starts after the steps whose output is already in its history.
Every item the model answers carries a tag of its thread in its id (``msg_tXXXXXXXX_3``), so the
history of a forked thread (Codex's ``thread/fork``: a new thread holding a copy of another's
conversation) counts only the fork's own answers, and the fork plays its script from the start.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from codex_mcp_wrapper.scripted.script import (
    EMITTING,
    Delay,
    Escalate,
    Fail,
    Hang,
    Raw,
    ReviewAnswer,
    Say,
    Script,
    Shell,
    Step,
    Tool,
    render_say,
)

DIVERGED = "replay diverged"  # how a strict replay's errors begin
SHELL_TOOLS = ("exec_command", "shell_command", "shell")


@dataclass(frozen=True)
class Items:
    """Answer with these output items (a message ends the turn, a function call does not)."""

    items: list[dict[str, Any]]
    delay: float = 0.0


@dataclass(frozen=True)
class HttpError:
    status: int
    message: str
    retry_after: float | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class StreamFailure:
    message: str
    delay: float = 0.0


@dataclass(frozen=True)
class Stall:
    seconds: float
    delay: float = 0.0


Reply = Items | HttpError | StreamFailure | Stall


@dataclass
class _Thread:
    cursor: int
    calls: int = 0
    diverged: HttpError | None = None  # a strict replay that diverged stays diverged


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    if isinstance(content, dict):
        return str(content.get("text", json.dumps(content)))
    return "" if content is None else str(content)


def last_user_prompt(body: dict[str, Any]) -> str:
    """The text of the last user message that is a prompt (not Codex's context blocks)."""
    for item in reversed(body.get("input") or []):
        if item.get("type") == "message" and item.get("role") == "user":
            text = _text_of(item.get("content"))
            if text.lstrip().startswith("<") and text.rstrip().endswith(">"):
                continue  # <environment_context>, <user_instructions> and the like
            return text
    return ""


_EXEC_HEADER = re.compile(
    r"\A(?:(?:Chunk ID|Wall time|Process exited|Original token count|Exit code)[^\n]*\n)+"
    r"Output:\n"
)


def _unwrap(text: str) -> str:
    """Codex renders an MCP result's structured content as ``{"result": ...}``: unwrap it."""
    if text.startswith("{") and text.endswith("}"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict) and set(data) == {"result"} and isinstance(data["result"], str):
            return data["result"]
    return text


def last_tool_output(body: dict[str, Any]) -> str:
    """The output of the most recent tool call, without exec_command's metadata header."""
    for item in reversed(body.get("input") or []):
        if str(item.get("type", "")).endswith("call_output"):
            output = item.get("output")
            if isinstance(output, dict) and "content" in output:
                text = _text_of(output["content"])
            else:
                text = _text_of(output)
            return _unwrap(_EXEC_HEADER.sub("", text, count=1))
    return ""


_TAGGED = re.compile(r"^(?:msg|fc)_(t[0-9a-f]{8})_")


def thread_tag(thread: str) -> str:
    """The tag the ids of a thread's answers carry."""
    return "t" + hashlib.sha256(thread.encode()).hexdigest()[:8]


def outputs_in_history(body: dict[str, Any], tag: str | None = None) -> int:
    """How many answers of the model the request's history already holds: with ``tag``, not
    those another thread gave (the history a fork copied); untagged ones (a raw step's, an
    older model's) count."""
    count = 0
    for item in body.get("input") or []:
        kind = item.get("type")
        if kind == "function_call" or (kind == "message" and item.get("role") == "assistant"):
            tagged = _TAGGED.match(str(item.get("id", "")))
            count += tag is None or tagged is None or tagged[1] == tag
    return count


def thread_key(headers: dict[str, str], body: dict[str, Any]) -> str:
    for name in ("thread-id", "session-id", "session_id", "conversation_id"):
        if headers.get(name):
            return headers[name]
    first = next(
        (
            _text_of(i.get("content"))
            for i in body.get("input") or []
            if i.get("type") == "message" and i.get("role") == "user"
        ),
        "",
    )
    return "anon-" + hashlib.sha256(first.encode()).hexdigest()[:16]


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", name.lower())


def find_mcp_tool(body: dict[str, Any], server: str, name: str) -> tuple[str, str] | None:
    """The (namespace, tool name) under which Codex offered this MCP tool, if it did."""
    for tool in body.get("tools") or []:
        if tool.get("type") != "namespace":
            continue
        namespace = str(tool.get("name", ""))
        if _normalise(namespace) != _normalise(f"mcp__{server}"):
            continue
        for inner in tool.get("tools") or []:
            if _normalise(str(inner.get("name", ""))) == _normalise(name):
                return namespace, str(inner["name"])
    return None


def find_function_tool(body: dict[str, Any], name: str) -> tuple[str | None, str] | None:
    """(None, name) when Codex offered a function tool of that name (a mission's tool)."""
    for tool in body.get("tools") or []:
        if tool.get("type") == "function" and tool.get("name") == name:
            return None, name
    return None


def offered_tools(body: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for tool in body.get("tools") or []:
        if tool.get("type") == "namespace":
            names += [f"{tool.get('name')}.{t.get('name')}" for t in tool.get("tools") or []]
        elif tool.get("name"):
            names.append(str(tool["name"]))
    return names


def _message(text: str, seq: int | str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "id": f"msg_{seq}",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call(
    name: str, arguments: dict[str, Any], seq: int | str, namespace: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "function_call",
        "id": f"fc_{seq}",
        "call_id": f"call_{seq}",
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }
    if namespace:
        item["namespace"] = namespace
    return item


@dataclass
class ScriptPlayer:
    """Plays scripts for many threads; one instance per model server."""

    default: Script = field(default_factory=Script)
    scripts: dict[str, Script] = field(default_factory=dict)
    _threads: dict[tuple[str, str], _Thread] = field(default_factory=dict)

    def forget(self, prefix: str) -> None:
        """Drop the scripts and thread states whose key starts with ``prefix`` (a run that
        ended, on a model that serves many runs)."""
        for key in [k for k in self.scripts if k.startswith(prefix)]:
            del self.scripts[key]
        for model, thread in [
            k for k in self._threads if k[0].partition("@")[2].startswith(prefix)
        ]:
            del self._threads[(model, thread)]

    def script_for(self, model: str) -> Script:
        _, _, key = model.partition("@")
        return self.scripts.get(key, self.default) if key else self.default

    def answer(self, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        model = str(body.get("model", ""))
        script = self.script_for(model)
        key = (model, thread_key(headers, body))
        tag = thread_tag(key[1])
        state = self._threads.get(key)
        if state is None:
            state = _Thread(cursor=_skip_emitted(script.steps, outputs_in_history(body, tag)))
            self._threads[key] = state
        state.calls += 1
        if state.diverged is not None:  # a retry of a diverged replay diverges again
            return state.diverged
        reply = self._next(script, state, body, tag)
        if isinstance(reply, HttpError) and reply.message.startswith(DIVERGED):
            state.diverged = reply
        return reply

    def _next(self, script: Script, state: _Thread, body: dict[str, Any], tag: str) -> Reply:
        delay = 0.0
        while state.cursor < len(script.steps):
            step = script.steps[state.cursor]
            state.cursor += 1
            if isinstance(step, Delay):
                delay += step.delay
                continue
            seq = f"{tag}_{state.calls}"
            return self._play(step, body, delay, seq=seq, strict=script.strict)
        prompt = last_user_prompt(body)
        if script.strict:
            return HttpError(
                400,
                f"{DIVERGED}: Codex asked the model a request number {state.calls} "
                f"but {script.source} has {len(script.steps)} step(s); record the run again "
                "or replay with --replay-mode echo",
                delay=delay,
            )
        return Items([_message(f"echo: {prompt}", f"{tag}_{state.calls}")], delay=delay)

    def _play(
        self, step: Step, body: dict[str, Any], delay: float, seq: str, strict: bool = False
    ) -> Reply:
        if isinstance(step, Say):
            text = render_say(
                step.say, last_output=last_tool_output(body), prompt=last_user_prompt(body)
            )
            return Items([_message(text, seq)], delay=delay)
        if isinstance(step, Shell | Escalate):
            offered = {t.get("name") for t in body.get("tools") or []}
            name = next((n for n in SHELL_TOOLS if n in offered), None)
            command = step.shell if isinstance(step, Shell) else step.escalate
            if name is None:
                text = (
                    "scripted model: Codex offered no shell tool "
                    f"(offered: {', '.join(offered_tools(body)) or 'none'})."
                )
                return Items([_message(text, seq)], delay=delay)
            args: dict[str, Any] = (
                {"cmd": command} if name == "exec_command" else {"command": command}
            )
            if isinstance(step, Escalate):
                args["sandbox_permissions"] = "require_escalated"
                args["justification"] = step.justification
            return Items([_call(name, args, seq)], delay=delay)
        if isinstance(step, Tool):
            found: tuple[str | None, str] | None
            if step.tool.server is None:
                found = find_function_tool(body, step.tool.name)
                what = f"tool '{step.tool.name}'"
            else:
                found = find_mcp_tool(body, step.tool.server, step.tool.name)
                what = f"MCP tool '{step.tool.name}' of server '{step.tool.server}'"
            if found is None:
                text = (
                    f"{what} was not offered by Codex (offered: "
                    f"{', '.join(offered_tools(body)) or 'none'})"
                )
                if strict:
                    return HttpError(400, f"{DIVERGED}: {text}", delay=delay)
                return Items([_message(f"scripted model: {text}.", seq)], delay=delay)
            namespace, name = found
            return Items([_call(name, dict(step.tool.arguments), seq, namespace)], delay=delay)
        if isinstance(step, Raw):
            return Items([dict(item) for item in step.raw], delay=delay)
        if isinstance(step, ReviewAnswer):
            return Items([_message(json.dumps(step.review), seq)], delay=delay)
        if isinstance(step, Fail):
            if step.fail == "stream":
                return StreamFailure("scripted failure: the stream broke", delay=delay)
            return HttpError(
                int(step.fail), f"scripted HTTP {step.fail}", step.retry_after, delay=delay
            )
        if isinstance(step, Hang):
            return Stall(step.hang, delay=delay)
        raise AssertionError(f"unhandled step {step!r}")


def _skip_emitted(steps: tuple[Step, ...], emitted: int) -> int:
    """The cursor just after the first ``emitted`` output-producing steps."""
    if emitted == 0:
        return 0
    seen = 0
    for index, step in enumerate(steps):
        if isinstance(step, EMITTING):
            seen += 1
            if seen == emitted:
                return index + 1
    return len(steps)
