"""The script format of the scripted model, and its validation.

A script is a list of steps (or a mapping with a ``steps`` list). Each step is a mapping with
exactly one key::

    - say: "text"                      # an assistant message; ends the turn
    - shell: "touch hello.txt"         # a call of Codex's shell tool; the script goes on
    - tool: {server: fs, name: read, arguments: {path: a.txt}}   # an MCP tool call
    - tool: {name: ask_orchestrator, arguments: {question: go?}}  # a mission tool (no server)
    - escalate: "rm -rf build"         # a shell call asking to run outside the sandbox
    - fail: 500 | 400 | 429 | stream   # an HTTP error, or an SSE response.failed
    - hang: 30                         # open the stream, then stall for 30 s and drop it
    - delay: 0.5                       # wait before answering with the next step
    - raw: [{type: message, ...}]      # output items sent as they are (recorded answers)
    - review: {findings: [...], ...}   # a review's answer (review mode), as JSON; ends the turn

A mapping ``{steps: [...], strict: true}`` is a replay: running out of steps, or calling a tool
Codex did not offer, answers HTTP 400 "replay diverged: ..." instead.

``say`` may use ``{last_output}`` (the output of the last tool call) and ``{prompt}``
(the last user prompt). When the steps run out the model echoes the prompt.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codex_mcp_wrapper.errors import ScriptError
from codex_mcp_wrapper.inputs import parse_document, read_text_file

MAX_SCRIPT_BYTES = 1_000_000
TEMPLATE_FIELDS = ("last_output", "prompt")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Say(_Step):
    say: str


class Shell(_Step):
    shell: str


class ToolCall(BaseModel):
    """An MCP tool of ``server``; without ``server``, a tool Codex offers by that name (the
    mission's own tools)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    server: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Tool(_Step):
    tool: ToolCall


class Escalate(_Step):
    escalate: str
    justification: str = "The scripted model asks to run this outside the sandbox."


class Fail(_Step):
    fail: Literal[400, 429, 500, "stream"]
    retry_after: Annotated[float, Field(ge=0)] | None = None


class Hang(_Step):
    hang: Annotated[float, Field(ge=0, le=86_400)]


class Delay(_Step):
    delay: Annotated[float, Field(ge=0, le=3_600)]


class Raw(_Step):
    """Response output items sent as they are (a recorded answer no other step expresses)."""

    raw: Annotated[list[dict[str, Any]], Field(min_length=1)]


class ReviewAnswer(_Step):
    """The model's answer to Codex's review prompt: ``findings`` (each ``title``, ``body``,
    ``priority`` 0-3, ``confidence_score``, ``code_location``), ``overall_correctness``,
    ``overall_explanation``, sent as the JSON the review prompt asks for."""

    review: dict[str, Any]


Step = Say | Shell | Tool | Escalate | Fail | Hang | Delay | Raw | ReviewAnswer
STEP_KINDS: dict[str, type[_Step]] = {
    "say": Say,
    "shell": Shell,
    "tool": Tool,
    "escalate": Escalate,
    "fail": Fail,
    "hang": Hang,
    "delay": Delay,
    "raw": Raw,
    "review": ReviewAnswer,
}
# Steps that answer the request with output Codex keeps in the thread's history.
EMITTING = (Say, Shell, Tool, Escalate, Raw, ReviewAnswer)


class Script(BaseModel):
    """A validated script; an empty one makes the model echo every prompt."""

    model_config = ConfigDict(frozen=True)
    steps: tuple[Step, ...] = ()
    source: str = "<script>"
    # A replay: a request past the last step, or a tool Codex no longer offers, is an error
    # (HTTP 400 "replay diverged: ...") instead of an echo or a message.
    strict: bool = False


def _describe(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_script(data: object, source: str = "<script>") -> Script:
    """Validate already-parsed script data; raise ScriptError naming source, step and field."""
    strict = False
    if isinstance(data, dict) and set(data) in ({"steps"}, {"steps", "strict"}):
        strict = bool(data.get("strict"))
        data = data["steps"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ScriptError(
            f"{source}: a script must be a list of steps (or a mapping with a 'steps' list), "
            f"got {type(data).__name__}."
        )
    steps: list[Step] = []
    for index, raw in enumerate(data):
        where = f"{source}: step {index}"
        if not isinstance(raw, dict) or not raw:
            raise ScriptError(
                f"{where}: a step must be a mapping like 'say: TEXT', got {_describe(raw)}."
            )
        kinds = [key for key in raw if key in STEP_KINDS]
        if len(kinds) != 1:
            unknown = [str(key) for key in raw if key not in STEP_KINDS]
            if unknown and not kinds:
                raise ScriptError(
                    f"{where}: unknown step '{unknown[0]}'; expected one of "
                    f"{', '.join(STEP_KINDS)}."
                )
            raise ScriptError(f"{where}: a step has exactly one kind, got {', '.join(kinds)}.")
        kind = kinds[0]
        try:
            step = STEP_KINDS[kind].model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or kind
            raise ScriptError(
                f"{where} ({kind}): field '{field}': {err['msg']} "
                f"(got {_describe(err.get('input'))})."
            ) from exc
        if isinstance(step, Say):
            for name in _PLACEHOLDER.findall(step.say.replace("{{", "").replace("}}", "")):
                if name not in TEMPLATE_FIELDS:
                    raise ScriptError(
                        f"{where} (say): unknown placeholder '{{{name}}}'; use "
                        f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}, "
                        "or double the braces for a literal one."
                    )
        steps.append(step)  # type: ignore[arg-type]
    return Script(steps=tuple(steps), source=source, strict=strict)


def load_script(path: str | Path) -> Script:
    """Read and validate a YAML or JSON script file (a regular file, size and aliases
    bounded: ``inputs``)."""
    path = Path(path)
    text = read_text_file(path, "script", MAX_SCRIPT_BYTES, ScriptError)
    return parse_script(parse_document(text, str(path), "script", ScriptError), source=str(path))


def render_say(text: str, *, last_output: str, prompt: str) -> str:
    """Fill the known placeholders; ``{{``/``}}`` stand for literal braces."""
    values = {"last_output": last_output, "prompt": prompt}
    out = _PLACEHOLDER.sub(
        lambda m: values[m.group(1)], text.replace("{{", "\0").replace("}}", "\1")
    )
    return out.replace("\0", "{").replace("\1", "}")
