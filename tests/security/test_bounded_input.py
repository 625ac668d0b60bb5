"""Hostile files are refused fast, by the CLI as by the server (the same reader), and the
parts of the trust boundary that are plain functions: redaction of transformed secrets, the
tokens file."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from codex_mcp_wrapper.engine.redaction import MASK, Redactor
from codex_mcp_wrapper.inputs import MAX_YAML_NODES, bounded_yaml, expanded_size
from tests.helpers.cli import run_cli
from tests.security.test_hostile_client import ALIAS_BOMB

# A whole CLI process (start-up included) refuses within seconds; reading /dev/zero or
# expanding the alias bomb would take minutes (and gigabytes), so this bound tells them apart
# even on a loaded machine.
REFUSE_WITHIN = 60


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("bomb.yaml", ALIAS_BOMB, "aliases expand to over"),
        ("deep.yaml", "tasks: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("deep.json", '{"tasks": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ("self.yaml", "a: &a [*a]\ntasks: [{prompt: x}]", "refers to the node"),
        ("long.json", '{"tasks": [{"prompt": "x", "retries": ' + "1" * 5000 + "}]}", "digits"),
        ("long.yaml", "tasks: [{prompt: x, retries: " + "1" * 5000 + "}]", "digits"),
        ("date.yaml", "tasks: [{prompt: x, id: 2001-13-45}]", "quote it to keep it as text"),
        ("fifo.yaml", None, "not a regular file"),
        ("zero", "/dev/zero", "not a regular file"),
    ],
)
def test_validate_refuses_a_hostile_file_fast_in_one_line(
    name: str, content: str | None, says: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is None:
        os.mkfifo(path)
    elif content.startswith("/dev/"):
        path = Path(content)
    else:
        path.write_text(content)
    done = run_cli(["validate", str(path)], dict(os.environ), timeout=REFUSE_WITHIN)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_aliases_are_counted_where_used_and_ordinary_anchors_pass() -> None:
    merged = "base: &b {sandbox: read-only, retries: 1}\ntasks: [{<<: *b, prompt: x}]"
    assert bounded_yaml(merged)["tasks"][0]["retries"] == 1
    node = YAML(typ="safe", pure=True).compose("a: &a [1, 2, 3]\nb: [*a, *a, *a]")
    assert expanded_size(node, MAX_YAML_NODES) == 1 + (1 + 4) + (1 + 1 + 3 * 4)


def test_redaction_catches_a_secret_reversed_and_in_base64_at_any_alignment() -> None:
    secret = "sk-proj-abcdef0123456789"
    redactor = Redactor([secret])
    for prefix in ("", "x", "xy"):
        encoded = base64.b64encode(f"{prefix}{secret}\n".encode()).decode()
        assert secret[3:9] not in redactor.text(encoded)
        assert MASK in redactor.text(encoded)
    assert redactor.text(secret[::-1]) == MASK
    assert redactor.text(base64.urlsafe_b64encode(secret.encode()).decode()).startswith(MASK)
    assert redactor.text("ordinary text") == "ordinary text"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("alice\n", "write NAME TOKEN, or NAME TOKEN admin"),
        ("alice tok root\n", "write NAME TOKEN, or NAME TOKEN admin"),
        ("alice tok-1\nalice tok-2\n", "the name alice is used twice"),
        ("alice tok-1\nbob tok-1\n", "this token is already alice's"),
        ("# nothing\n", "no tokens in it"),
    ],
)
def test_a_bad_tokens_file_is_one_sentence_and_exit_2(
    content: str, says: str, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(content)
    argv = ["--state-dir", str(tmp_path / "state"), "serve", "--transport", "http"]
    done = run_cli([*argv, "--tokens-file", str(tokens)], dict(os.environ), timeout=60)
    assert done.returncode == 2
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "tok-1" not in done.stderr  # a token is never shown


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("fifo.toml", None, "not a regular file"),
        ("zero", "/dev/zero", "not a regular file"),
        ("deep.toml", "workers = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
        ("long.toml", "workers = " + "1" * 5000, "not a valid TOML config"),
    ],
)
def test_serve_refuses_a_hostile_config_file_fast_in_one_line(
    name: str, content: str | None, says: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is None:
        os.mkfifo(path)
    elif content.startswith("/dev/"):
        path = Path(content)
    else:
        path.write_text(content)
    done = run_cli(["serve", "--config", str(path)], dict(os.environ), timeout=REFUSE_WITHIN)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
