"""Malformed tool calls get OpenHands' words: the checks of OpenHands 0.62.0
tests/unit/agenthub/test_function_calling.py, run on our parse_tool_call (pure parsing, no
sandbox involved). docs/parity/tool-contract.md §2, §9c."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.agent.tools import (
    ERROR_SUFFIX,
    MalformedToolCall,
    parse_tool_call,
    tool_specs,
)
from state_store.events import ExecuteBash, StrReplaceEditor, Think, ToolArgs, ToolCall

TOOLS = {"execute_bash", "str_replace_editor", "think", "finish"}


def _parse(name: str, arguments: dict[str, Any] | str) -> ToolArgs:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return parse_tool_call(ToolCall(id="c1", name=name, arguments=raw), TOOLS)


def _error(name: str, arguments: dict[str, Any] | str) -> str:
    with pytest.raises(MalformedToolCall) as caught:
        _parse(name, arguments)
    message = str(caught.value)
    assert message.endswith(ERROR_SUFFIX)  # OpenHands' ErrorObservation suffix
    return message.removesuffix(ERROR_SUFFIX)


def test_execute_bash_valid_and_missing_command() -> None:
    # test_execute_bash_valid, test_execute_bash_missing_command
    args = _parse("execute_bash", {"command": "ls", "is_input": "false", "security_risk": "LOW"})
    assert args == ExecuteBash(command="ls", is_input=False)
    assert (
        _error("execute_bash", {})
        == 'Missing required argument "command" in tool call execute_bash'
    )


@pytest.mark.parametrize("is_input", ["true", True])
def test_is_input_as_openhands_string_or_boolean(is_input: str | bool) -> None:
    assert _parse("execute_bash", {"command": "y", "is_input": is_input}).is_input is True


def test_str_replace_editor_valid_and_missing_required() -> None:
    # test_str_replace_editor_valid, test_str_replace_editor_missing_required
    args = _parse(
        "str_replace_editor",
        {"command": "view", "path": "/w/a.py", "view_range": [1, 2], "security_risk": "LOW"},
    )
    assert args == StrReplaceEditor(command="view", path="/w/a.py", view_range=[1, 2])
    missing = _error("str_replace_editor", {"path": "/w/a.py"})
    assert missing == 'Missing required argument "command" in tool call str_replace_editor'
    missing = _error("str_replace_editor", {"command": "view"})
    assert missing == 'Missing required argument "path" in tool call str_replace_editor'


def test_invalid_json_arguments() -> None:
    # test_invalid_json_arguments
    assert _error("execute_bash", "invalid json") == (
        "Failed to parse tool call arguments: invalid json"
    )


def test_unexpected_argument_handling() -> None:
    # test_unexpected_argument_handling: security_risk is accepted, old_str_prefix is not.
    out = _error(
        "str_replace_editor",
        {
            "command": "str_replace",
            "path": "/w/a.py",
            "old_str": "a",
            "new_str": "b",
            "old_str_prefix": "x",
            "security_risk": "LOW",
        },
    )
    assert out.startswith(
        "Unexpected argument old_str_prefix in tool call str_replace_editor. Allowed "
        "arguments are: {'command', 'path', "
    )
    # view_range on other commands is dropped, as OpenHands does, not refused.
    args = _parse(
        "str_replace_editor",
        {"command": "create", "path": "/a", "file_text": "", "view_range": [1, 2]},
    )
    assert args.command == "create"


def test_unknown_tool_is_not_registered() -> None:
    out = _error("execute_ipython_cell", {"code": "print(1)"})
    assert out == (
        "Tool execute_ipython_cell is not registered. (arguments: {'code': 'print(1)'}). Please "
        "check the tool name and retry with an existing tool."
    )
    # A tool turned off in [agent] is not registered either; JSON is checked first.
    with pytest.raises(MalformedToolCall, match="is not registered"):
        parse_tool_call(ToolCall(id="c", name="think", arguments='{"thought": "x"}'), {"finish"})
    assert _error("nope", "{bad").startswith("Failed to parse tool call arguments")


def test_editor_runtime_errors_for_bad_values() -> None:
    # The editor's and OpenHands runtime's messages (after `ERROR:\n`); "185" is converted
    # (tests/runtime/test_aci_edit.py::test_insert_line_string_conversion).
    assert _error("str_replace_editor", {"command": "bogus", "path": "/a"}) == (
        "ERROR:\nUnrecognized command bogus. The allowed commands for the str_replace_editor "
        "tool are: view, create, str_replace, insert, undo_edit"
    )
    bad_line = {"command": "insert", "path": "/a", "insert_line": "abc", "new_str": "x"}
    assert _error("str_replace_editor", bad_line) == (
        "ERROR:\nInvalid insert_line value: 'abc'. Expected an integer."
    )
    good_line = {**bad_line, "insert_line": "185"}
    assert _parse("str_replace_editor", good_line).insert_line == 185


def test_specs_declare_openhands_is_input_and_security_risk() -> None:
    specs = {s["function"]["name"]: s["function"]["parameters"] for s in tool_specs({})}
    assert specs["execute_bash"]["properties"]["is_input"]["enum"] == ["true", "false"]
    for name in ("execute_bash", "str_replace_editor"):
        risk = specs[name]["properties"]["security_risk"]
        assert risk["enum"] == ["LOW", "MEDIUM", "HIGH"]
        assert "security_risk" not in specs[name]["required"]


def test_think_without_thought_is_accepted() -> None:
    # OpenHands' function_calling.py reads `arguments.get('thought', '')`.
    assert _parse("think", {}) == Think(thought="")
