"""Property-based: every loader of user files (missions, scripts, cassettes, serve's TOML
config) given arbitrary
YAML or JSON text, or arbitrary parsed structures, either returns what it loads or raises an
``InputError`` of one line, never another exception, and within a bound; the CLI (`validate`,
`cassette check`) turns the same inputs into exit 0 or 2 and one line on stderr.

The generated text mixes ordinary data with what hostile files use: anchors and aliases
(bombs, self-reference, merge keys), deep nesting, YAML tags (``!!python/object``,
``!!binary``, ``!!set``, unknown ones), huge numbers, non-string and duplicate keys, several
documents, control characters and byte-order marks."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomli_w
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from codex_mcp_wrapper.cassettes.model import load_cassette
from codex_mcp_wrapper.cli.serve_config import read_serve_config
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.missions.loading import load_mission, parse_mission
from codex_mcp_wrapper.scripted.script import load_script, parse_script
from tests.helpers.cli import run_cli

# One load of a file of at most a few kilobytes takes milliseconds; an alias bomb or a parser
# that loops would take minutes. The deadline tells them apart on a loaded 2-core machine.
PER_EXAMPLE = timedelta(seconds=3)
# No "explain" phase: it traces the code, which makes a deep document ten times slower.
PHASES = [Phase.explicit, Phase.generate, Phase.shrink]
FAST = settings(
    max_examples=100,
    deadline=PER_EXAMPLE,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    phases=PHASES,
)
# Around the depth bound, and far past what the parsers recurse through (~1 s to refuse:
# ruamel's scanner is quadratic in flow depth until the composer gives up).
DEPTHS = [1, 5, 99, 100, 101, 300, 2000]
# A CLI process (start-up included) for each of a few examples.
CLI_BOUND = 60

KEYS = [
    "mission_id",
    "workspace_root",
    "provider",
    "defaults",
    "tasks",
    "id",
    "prompt",
    "script",
    "depends_on",
    "timeout_sec",
    "sandbox",
    "env",
    "mcp_servers",
    "expect",
    "follow_ups",
    "hooks",
    "tools",
    "say",
    "shell",
    "tool",
    "fail",
    "raw",
    "steps",
    "strict",
    "version",
    "exchanges",
    "step",
    "offered",
    "<<",
    "${HOME}",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["${UNSET_VAR_I22B}", "$${x}", "{last_output}", "{nope}", "a\x00b"])
)
structures = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


def _nest(depth: int, json_syntax: bool) -> str:
    if json_syntax:
        return '{"tasks": ' + "[" * depth + "]" * depth + "}"
    return "tasks: " + "[" * depth + "]" * depth


HOSTILE = st.one_of(
    st.sampled_from(DEPTHS).map(lambda n: _nest(n, False)),
    st.sampled_from(DEPTHS).map(lambda n: _nest(n, True)),
    st.integers(2, 9).map(
        lambda n: (
            "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, n))
            + "tasks: [{prompt: x}]\n"
        )
    ),
    st.just("a: &a [*a]\ntasks: [{prompt: x}]\n"),
    st.just("base: &b {prompt: hi}\ntasks: [{<<: *b, id: one}]\n"),
    st.sampled_from(
        [
            "!!python/object/apply:os.system ['true']",
            "tasks: [{prompt: !!binary aGVsbG8=}]",
            "tasks: !!set {a, b}",
            "tasks: [{prompt: !custom x}]",
            "tasks: [{prompt: x, timeout_sec: !!float nan}]",
            "tasks: [{prompt: x, id: !!timestamp 2001-12-14}]",
            "tasks: [{prompt: x, id: 2001-13-45}]",
            "tasks: [{prompt: !!bool maybe}]",
            "tasks: [{prompt: x, timeout_sec: 0x" + "f" * 4000 + "}]",
            "tasks: !!omap [{a: 1}]",
            "? [1, 2]\n: x\ntasks: []",
            "tasks: []\ntasks: []",
            "tasks: [{prompt: x}]\n---\ntasks: []",
            "\ufefftasks: [{prompt: x}]",
            'tasks: [{prompt: "\\x07\\u2028"}]',
            "{1: 2, null: 3, tasks: [{prompt: x}]}",
            "steps: [{say: hi}]",
            "version: 1\nmission_id: m\ntasks: {t: {exchanges: [{step: {say: hi}}]}}",
            "version: 2\nmission_id: m",
            "version: 1\nmission_id: m\ntasks: {t: {exchanges: [{step: {shell: ls}, x: 1}]}}",
        ]
    ),
    st.integers(4301, 20_000).map(lambda n: "tasks: [{prompt: x, timeout_sec: " + "1" * n + "}]"),
    st.integers(4301, 20_000).map(
        lambda n: '{"tasks": [{"prompt": "x", "timeout_sec": ' + "1" * n + "}]}"
    ),
)


def _render(data: Any, how: str) -> str:
    if how == "toml":  # the data as TOML where it can be (a table of TOML values), else JSON
        try:
            return tomli_w.dumps(data if isinstance(data, dict) else {"value": data})
        except (TypeError, ValueError):
            how = "json"
    if how == "json":
        return json.dumps(data, default=str)
    try:
        return yaml.safe_dump(data, default_flow_style=how == "flow", allow_unicode=True)
    except yaml.YAMLError:  # a value PyYAML cannot write: write it as JSON, a subset of YAML
        return json.dumps(data, default=str)


texts = st.one_of(
    st.text(max_size=300),
    st.builds(_render, structures, st.sampled_from(["json", "block", "flow"])),
    HOSTILE,
    st.builds(lambda a, b: a + "\n" + b, HOSTILE, st.text(max_size=40)),
)


def _write(text: str, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write(text)
    return Path(name)


def loads_or_refuses_in_one_line(load: Callable[[], object]) -> None:
    """``load()`` returns, or raises an ``InputError`` whose message is one line; any other
    exception fails the test (hypothesis shows it with the input)."""
    try:
        load()
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, message


def _on_file(text: str, suffix: str, load: Callable[[Path], object]) -> None:
    path = _write(text, suffix)
    try:
        loads_or_refuses_in_one_line(lambda: load(path))
    finally:
        path.unlink()


@FAST
@given(texts, st.sampled_from([".yaml", ".json", ".yml"]))
def test_any_text_as_a_mission_file_loads_or_is_refused_in_one_line(text: str, suffix: str) -> None:
    _on_file(text, suffix, load_mission)


@FAST
@given(texts, st.sampled_from([".yaml", ".json"]))
def test_any_text_as_a_script_file_loads_or_is_refused_in_one_line(text: str, suffix: str) -> None:
    _on_file(text, suffix, load_script)


@FAST
@given(texts)
def test_any_text_as_a_cassette_loads_or_is_refused_in_one_line(text: str) -> None:
    _on_file(text, ".yaml", load_cassette)


TOML_HOSTILE = st.one_of(
    st.sampled_from([1, 50, 101, 3000]).map(lambda n: "workers = " + "[" * n + "]" * n),
    st.sampled_from([1, 101, 3000]).map(lambda n: "a = " + "{b = " * n + "1" + "}" * n),
    st.integers(4301, 20_000).map(lambda n: "workers = " + "1" * n),
    st.sampled_from(
        [
            'transport = "http"\nport = 70000',
            "[serve]\nworkers = 2\n[serve]\nworkers = 3",
            'host = "127.0.0.1"\ncolour = 1',
            "workers = 1e999",
            "[[mcp_servers]]\nx = 1",
        ]
    ),
)


@FAST
@given(
    st.one_of(st.text(max_size=300), TOML_HOSTILE, st.builds(_render, structures, st.just("json")))
)
def test_any_text_as_a_serve_config_loads_or_is_refused_in_one_line(text: str) -> None:
    _on_file(text, ".toml", read_serve_config)


@FAST
@given(structures | st.fixed_dictionaries({"tasks": structures}, optional={"defaults": structures}))
def test_any_structure_as_a_mission_is_valid_or_refused_in_one_line(data: Any) -> None:
    loads_or_refuses_in_one_line(lambda: parse_mission(data, "<generated>", environ={}))


@FAST
@given(structures | st.fixed_dictionaries({"steps": structures}))
def test_any_structure_as_a_script_is_valid_or_refused_in_one_line(data: Any) -> None:
    loads_or_refuses_in_one_line(lambda: parse_script(data, "<generated>"))


@FAST
@given(
    st.fixed_dictionaries(
        {
            "mission_id": st.text(max_size=5),
            "tasks": st.dictionaries(st.text(max_size=4), structures),
        }
    )
)
def test_any_structure_as_a_cassette_is_valid_or_refused_in_one_line(data: Any) -> None:
    """What the file loader checks after parsing, on generated data (no YAML in between)."""
    path = _write(json.dumps(data, default=str), ".yaml")
    try:
        loads_or_refuses_in_one_line(lambda: load_cassette(path))
    finally:
        path.unlink()


@settings(max_examples=4, deadline=None, database=None, phases=PHASES)
@given(HOSTILE, st.sampled_from([("validate", ".yaml"), ("cassette check", ".yaml")]))
def test_the_cli_answers_hostile_files_with_exit_0_or_2_and_one_line(
    text: str, command: tuple[str, str]
) -> None:
    path = _write(text, command[1])
    try:
        started = time.monotonic()
        done = run_cli([*command[0].split(), str(path)], dict(os.environ), timeout=CLI_BOUND)
    finally:
        path.unlink()
    assert time.monotonic() - started < CLI_BOUND
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 2), done.stderr
    if done.returncode == 2:
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
