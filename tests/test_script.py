"""The script format: what it accepts, and one clear error for what it does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codex_mcp_wrapper.errors import ScriptError
from codex_mcp_wrapper.scripted.player import ScriptPlayer, last_tool_output
from codex_mcp_wrapper.scripted.script import (
    Fail,
    Say,
    Shell,
    Tool,
    load_script,
    parse_script,
    render_say,
)


def test_every_step_kind_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        """
- say: hi
- shell: ls
- tool: {server: fs, name: read_file, arguments: {path: a.txt}}
- escalate: rm -rf build
- fail: 500
- fail: stream
- hang: 2
- delay: 0.5
"""
    )
    script = load_script(path)
    assert [type(s).__name__ for s in script.steps] == [
        "Say",
        "Shell",
        "Tool",
        "Escalate",
        "Fail",
        "Fail",
        "Hang",
        "Delay",
    ]
    assert isinstance(script.steps[2], Tool) and script.steps[2].tool.arguments == {"path": "a.txt"}


def test_a_mapping_with_steps_is_accepted_too() -> None:
    script = parse_script({"steps": [{"say": "x"}]})
    assert script.steps == (Say(say="x"),)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([{"say": "ok"}, {"sya": "typo"}], "step 1: unknown step 'sya'"),
        ([{"fail": 503}], "step 0 (fail): field 'fail'"),
        ([{"hang": "forever"}], "step 0 (hang): field 'hang'"),
        ([{"tool": {"server": "fs"}}], "step 0 (tool): field 'tool.name'"),
        ([{"say": "a", "shell": "b"}], "step 0: a step has exactly one kind"),
        (["say hi"], "step 0: a step must be a mapping"),
        ([{"say": "{nope}"}], "unknown placeholder '{nope}'"),
        ("just text", "a script must be a list of steps"),
    ],
)
def test_a_bad_script_names_the_file_step_and_field(steps: object, expected: str) -> None:
    with pytest.raises(ScriptError) as err:
        parse_script(steps, source="bad.yaml")
    message = str(err.value)
    assert message.startswith("bad.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_the_documented_script_error_is_the_one_the_code_gives(tmp_path: Path) -> None:
    """docs/scripted-model.md shows a bad script and its error; step numbers count from 0."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "scripted-model.md").read_text()
    section = doc.split("A bad script fails", 1)[1]
    (script,) = re.findall(r"```yaml\n(.*?)```", section.split("##", 1)[0], re.DOTALL)
    (message,) = re.findall(r"`(s\.yaml: step .*?)`", section)
    path = tmp_path / "s.yaml"
    path.write_text(script)
    with pytest.raises(ScriptError) as err:
        load_script(path)
    assert str(err.value) == f"{tmp_path}/{message}"
    assert "step 1 (fail)" in message  # the second step


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("- say: hi\n- shell: [unclosed\n")
    with pytest.raises(ScriptError, match=r"broken.yaml: YAML syntax error at line \d+"):
        load_script(path)


def test_a_missing_script_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="no such script file"):
        load_script(tmp_path / "absent.yaml")


def test_templating_fills_known_fields_and_keeps_doubled_braces() -> None:
    assert render_say("saw {last_output} for {prompt} {{x}}", last_output="A", prompt="B") == (
        "saw A for B {x}"
    )
    parse_script([{"say": "literal {{braces}}"}])  # doubled braces are not placeholders


def test_last_output_strips_exec_metadata_and_unwraps_mcp_results() -> None:
    exec_output = "Chunk ID: 1\nWall time: 0.0 seconds\nProcess exited with code 0\nOutput:\nhi\n"
    body = {"input": [{"type": "function_call_output", "output": exec_output}]}
    assert last_tool_output(body) == "hi\n"
    mcp_output = 'Wall time: 0.1 seconds\nOutput:\n{"result":"secret"}'
    assert last_tool_output(
        {"input": [{"type": "function_call_output", "output": mcp_output}]}
    ) == ("secret")


def _request(thread: str, *history: dict[str, object]) -> tuple[dict[str, str], dict[str, object]]:
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
    return {"thread-id": thread}, {
        "model": "scripted",
        "input": [user, *history],
        "tools": [{"type": "function", "name": "exec_command"}],
    }


def test_each_thread_plays_the_script_from_the_start_and_then_echoes() -> None:
    player = ScriptPlayer(default=parse_script([{"shell": "ls"}, {"say": "done"}]))
    first = player.answer(*_request("a"))
    assert first.items[0]["type"] == "function_call"  # type: ignore[union-attr]
    other = player.answer(*_request("b"))
    assert other.items[0]["type"] == "function_call"  # type: ignore[union-attr]
    second = player.answer(*_request("a"))
    assert second.items[0]["content"][0]["text"] == "done"  # type: ignore[union-attr]
    third = player.answer(*_request("a"))
    assert third.items[0]["content"][0]["text"] == "echo: go"  # type: ignore[union-attr]


def test_a_thread_new_to_the_model_resumes_after_the_answers_in_its_history() -> None:
    player = ScriptPlayer(default=parse_script([{"shell": "ls"}, {"fail": 500}, {"say": "end"}]))
    call = {"type": "function_call", "name": "exec_command", "call_id": "c", "arguments": "{}"}
    reply = player.answer(*_request("resumed", call))
    assert isinstance(player.default.steps[1], Fail)
    assert reply.status == 500  # type: ignore[union-attr]
    reply = player.answer(*_request("resumed", call))
    assert reply.items[0]["content"][0]["text"] == "end"  # type: ignore[union-attr]


def test_shell_uses_the_shell_tool_codex_offered() -> None:
    player = ScriptPlayer(default=parse_script([Shell(shell="ls").model_dump()]))
    headers, body = _request("x")
    body["tools"] = [{"type": "function", "name": "shell_command"}]
    reply = player.answer(headers, body)
    assert reply.items[0]["name"] == "shell_command"  # type: ignore[union-attr]
