"""Generated malformed missions and scripts: `validate` ends in exit 2 and one line, never a
traceback (property-based, hypothesis)."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_mcp_wrapper.cli.main import main

FIELDS = [
    "id",
    "prompt",
    "cwd",
    "depends_on",
    "sandbox",
    "approval_policy",
    "timeout_sec",
    "idle_timeout_sec",
    "retries",
    "env",
    "config",
    "mcp_servers",
    "artifacts",
    "follow_ups",
    "script",
    "output_schema",
    "base-instructions",
    "colour",
]
STEPS = ["say", "shell", "tool", "escalate", "fail", "hang", "delay", "sya"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
steps = st.lists(
    st.dictionaries(st.sampled_from(STEPS), values, min_size=0, max_size=2), max_size=4
)
tasks = st.lists(st.dictionaries(st.sampled_from(FIELDS), values | steps, max_size=6), max_size=4)
missions = st.fixed_dictionaries(
    {"tasks": tasks | values},
    optional={
        "mission_id": values,
        "workspace_root": values,
        "provider": values,
        "defaults": values,
        "extra": values,
    },
)


def validate(text: str, suffix: str) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"m{suffix}"
        path.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(["validate", str(path)])
            except SystemExit as exc:
                code = int(exc.code or 0)
            else:
                code = 0
    return code, out.getvalue(), err.getvalue()


def check(code: int, err: str) -> None:
    assert "Traceback" not in err
    if code == 0:
        return  # a generated mission that happens to be valid
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(missions)
def test_generated_missions_are_valid_or_one_line_and_exit_2(mission: dict[str, Any]) -> None:
    code, _, err = validate(json.dumps(mission, default=str), ".json")
    check(code, err)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_yaml_text_never_crashes_validate(text: str) -> None:
    code, _, err = validate(text, ".yaml")
    check(code, err)
    assert code != 0 or "tasks" in text


@settings(max_examples=100, deadline=None)
@given(steps)
def test_generated_scripts_inside_a_valid_mission(script: list[dict[str, Any]]) -> None:
    mission = {"tasks": [{"prompt": "p", "script": script}]}
    code, out, err = validate(json.dumps(mission, default=str), ".json")
    check(code, err)
    assert (code == 0) == ("valid mission" in out)


def test_an_oversized_mission_is_refused_before_it_is_parsed() -> None:
    code, _, err = validate("tasks: []\n" + "#" * 6_000_000, ".yaml")
    assert code == 2 and "over the limit" in err and err.count("\n") == 1
