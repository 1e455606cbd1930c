"""Tool-call parsing, JSON repair and the scripted server.

The quirk tests are pure: each scripted answer is wrapped into the vLLM-shaped completion the
scripted server would send and read with the ``openai`` package's own response model, so what is
parsed is exactly what the agent gets from vLLM (``resp.choices[0].message.model_dump()``) without an
HTTP round trip. The server itself is tested at the end.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from scripted_server import (
    MODEL_ID,
    ScriptedServer,
    content_tool_call,
    fenced_json_call,
    text_message,
    tool_calls_message,
)

from agent.context import RunOptions
from agent.parse import ParsedTurn, loads_lenient, parse_message, repair_json
from agent.run import tool_set

SEG = {"target": "white ceramic cup, front left", "keywords": ["cup", "mug"], "bbox_2d": [102, 388, 341, 702]}
MESSAGES = [{"role": "user", "content": "peel the front-most object"}]


def serve(*items: dict[str, Any]) -> ParsedTurn:
    """Each item as the ``openai`` client reads it from the scripted server; the last one parsed."""
    turn: ParsedTurn | None = None
    wrapper = ScriptedServer([])
    for item in items:
        body = wrapper.completion(item, {"model": MODEL_ID, "messages": MESSAGES})
        with warnings.catch_warnings():  # pydantic warns when arguments came as an object
            warnings.simplefilter("ignore", UserWarning)
            dumped = ChatCompletion.construct(**body).choices[0].message.model_dump()  # as the client builds it
        turn = parse_message(dumped)
    assert turn is not None
    return turn


# ---------------------------------------------------------------------------------------------
# Standard tool_calls


def test_standard_tool_calls():
    msg = tool_calls_message("segment", SEG)
    turn = serve(msg)
    assert len(turn.calls) == 1
    call = turn.calls[0]
    assert call.id == msg["tool_calls"][0]["id"] and call.id.startswith("call_")
    assert call.name == "segment" and call.arguments == SEG and call.error is None
    assert json.loads(call.raw) == SEG
    assert turn.text == "" and turn.reasoning == "" and turn.quirks == []
    assert tool_set(RunOptions(image="x.png")).validate(call.name, call.arguments)[1] == []


def test_reasoning_content_field():
    turn = serve(tool_calls_message("segment", SEG, reasoning="The cup occludes the plate."))
    assert turn.reasoning == "The cup occludes the plate."
    assert "reasoning_content" in turn.quirks
    assert turn.calls[0].arguments == SEG


def test_reasoning_field():
    msg = tool_calls_message("finish", {"reason": "only wall left"}, reasoning="Done.", reasoning_field="reasoning")
    turn = serve(msg)
    assert turn.reasoning == "Done." and "reasoning" in turn.quirks
    assert turn.calls[0].arguments == {"reason": "only wall left"}


def test_reasoning_in_both_fields_is_not_doubled():
    msg = tool_calls_message("finish", {"reason": "r"}, reasoning="Same thought.")
    msg["reasoning"] = "Same thought."
    assert serve(msg).reasoning == "Same thought."


def test_arguments_as_object():
    turn = serve(tool_calls_message("segment", SEG, raw_arguments=SEG))
    assert turn.calls[0].arguments == SEG and turn.calls[0].error is None
    assert "arguments_as_object" in turn.quirks


def test_malformed_arguments_repaired():
    broken = json.dumps(SEG)[:-1]  # missing closing brace
    turn = serve(tool_calls_message("segment", SEG, raw_arguments=broken))
    call = turn.calls[0]
    assert call.arguments == SEG and call.error is None and call.raw == broken
    assert "arguments_repaired" in turn.quirks and "missing_brace" in turn.quirks


def test_malformed_arguments_unrepairable():
    turn = serve(tool_calls_message("segment", SEG, raw_arguments='{"target": cup}'))
    call = turn.calls[0]
    assert call.name == "segment" and call.arguments is None
    assert call.error and "not valid JSON" in call.error


def test_double_encoded_arguments():
    turn = serve(tool_calls_message("finish", {}, raw_arguments=json.dumps(json.dumps({"reason": "r"}))))
    assert turn.calls[0].arguments == {"reason": "r"} and "arguments_double_encoded" in turn.quirks


def test_empty_arguments_string_is_empty_object():
    turn = serve(tool_calls_message("finish", {}, raw_arguments=""))
    assert turn.calls[0].arguments == {} and turn.calls[0].error is None


def test_several_tool_calls():
    msg = tool_calls_message("segment", SEG)
    msg["tool_calls"].append(
        {"id": "call_second", "type": "function", "function": {"name": "finish", "arguments": '{"reason": "r"}'}}
    )
    turn = serve(msg)
    assert [(c.id, c.name) for c in turn.calls] == [(msg["tool_calls"][0]["id"], "segment"), ("call_second", "finish")]


def test_tool_calls_take_priority_over_content_markup():
    msg = tool_calls_message("finish", {"reason": "r"})
    msg["content"] = 'Done.\n<tool_call>\n{"name": "segment", "arguments": {"target": "x"}}\n</tool_call>'
    turn = serve(msg)
    assert [c.name for c in turn.calls] == ["finish"]
    assert turn.text == "Done."
    assert "content_calls_ignored" in turn.quirks and "tool_call_in_content" not in turn.quirks


# ---------------------------------------------------------------------------------------------
# Hermes <tool_call> markup in content


def test_tool_call_in_content():
    turn = serve(content_tool_call("segment", SEG))
    assert [(c.id, c.name, c.arguments, c.error) for c in turn.calls] == [("call_0", "segment", SEG, None)]
    assert turn.calls[0].raw.startswith("<tool_call>") and turn.calls[0].raw.endswith("</tool_call>")
    assert turn.text == ""
    assert turn.quirks == ["tool_call_in_content"]


def test_tool_call_in_content_with_prose():
    turn = serve(content_tool_call("segment", SEG, prefix="The cup is in front.\n"))
    assert turn.text == "The cup is in front." and turn.calls[0].arguments == SEG


def test_two_tool_calls_in_content():
    msg = content_tool_call("segment", SEG)
    msg["content"] += '\n<tool_call>\n{"name": "finish", "arguments": {"reason": "r"}}\n</tool_call>'
    turn = serve(msg)
    assert [(c.id, c.name) for c in turn.calls] == [("call_0", "segment"), ("call_1", "finish")]
    assert turn.calls[1].arguments == {"reason": "r"}


def test_missing_brace():
    turn = serve(content_tool_call("segment", SEG, missing_brace=True))
    assert turn.calls[0].arguments == SEG and turn.calls[0].error is None
    assert {"tool_call_in_content", "missing_brace"} <= set(turn.quirks)


def test_missing_two_braces_and_close_tag():
    msg = content_tool_call("pad_canvas", {"mask_id": "m1"}, missing_close_tag=True)
    msg["content"] = msg["content"].rstrip().removesuffix("}}")
    turn = serve(msg)
    assert turn.calls[0].arguments == {"mask_id": "m1"}
    assert {"missing_brace", "missing_close_tag"} <= set(turn.quirks)


def test_missing_close_tag_only():
    turn = serve(content_tool_call("segment", SEG, missing_close_tag=True))
    assert turn.calls[0].arguments == SEG and "missing_close_tag" in turn.quirks and turn.text == ""


def test_missing_close_tag_followed_by_prose():
    msg = content_tool_call("finish", {"reason": "r"}, missing_brace=True, missing_close_tag=True)
    msg["content"] += "Now I wait for the result."
    turn = serve(msg)
    assert turn.calls[0].arguments == {"reason": "r"}
    assert turn.text == "Now I wait for the result."


def test_missing_open_tag():
    turn = serve(text_message('{"name": "finish", "arguments": {"reason": "r"}}\n</tool_call>'))
    assert turn.calls[0].arguments == {"reason": "r"} and "missing_open_tag" in turn.quirks


def test_unparseable_content_call_is_an_error_call():
    turn = serve(text_message('<tool_call>\n{"name": "segment", "arguments": {target: cup}}\n</tool_call>'))
    call = turn.calls[0]
    assert call.id == "call_0" and call.name == "segment" and call.arguments is None
    assert call.error and "could not parse" in call.error


def test_parameters_key_in_tool_call_markup():
    msg = text_message('<tool_call>\n{"name": "finish", "parameters": {"reason": "r"}}\n</tool_call>')
    turn = serve(msg)
    assert turn.calls[0].arguments == {"reason": "r"} and "parameters_key" in turn.quirks


# ---------------------------------------------------------------------------------------------
# JSON fences and bare JSON


def test_json_fence():
    turn = serve(fenced_json_call("segment", SEG))
    assert turn.calls[0].arguments == SEG and turn.calls[0].id == "call_0"
    assert turn.text == "I will segment the front-most object."
    assert "json_fence" in turn.quirks and turn.calls[0].raw.startswith("```json")


def test_json_fence_parameters_key():
    turn = serve(fenced_json_call("finish", {"reason": "r"}, key="parameters"))
    assert turn.calls[0].arguments == {"reason": "r"} and "parameters_key" in turn.quirks


def test_json_fence_list():
    calls = [{"name": "segment", "arguments": SEG}, {"name": "finish", "arguments": {"reason": "r"}}]
    turn = serve(text_message("Two steps:\n```json\n" + json.dumps(calls) + "\n```"))
    assert [(c.id, c.name, c.arguments) for c in turn.calls] == [
        ("call_0", "segment", SEG), ("call_1", "finish", {"reason": "r"})
    ]
    assert {"json_fence", "fence_list"} <= set(turn.quirks) and turn.text == "Two steps:"


def test_unclosed_json_fence_with_missing_brace():
    turn = serve(text_message('```json\n{"name": "finish", "arguments": {"reason": "r"}'))
    assert turn.calls[0].arguments == {"reason": "r"}
    assert {"json_fence", "unclosed_fence", "missing_brace"} <= set(turn.quirks)


def test_fence_that_is_not_a_call_stays_text():
    content = 'The layers so far:\n```json\n{"cup": 1}\n```'
    turn = serve(text_message(content))
    assert turn.calls == [] and turn.text == content


def test_bare_json_content():
    turn = serve(text_message(json.dumps({"name": "segment", "arguments": SEG})))
    assert turn.calls[0].arguments == SEG and "bare_json" in turn.quirks and turn.text == ""


def test_openai_shaped_object_in_fence():
    obj = {"type": "function", "function": {"name": "finish", "arguments": json.dumps({"reason": "r"})}}
    turn = serve(text_message("```json\n" + json.dumps(obj) + "\n```"))
    assert turn.calls[0].name == "finish" and turn.calls[0].arguments == {"reason": "r"}


# ---------------------------------------------------------------------------------------------
# Think blocks and text-only answers


def test_think_block_in_content():
    turn = serve(content_tool_call("segment", SEG, think="The cup is in front of the plate."))
    assert turn.reasoning == "The cup is in front of the plate."
    assert turn.calls[0].arguments == SEG and turn.text == ""
    assert "think_block" in turn.quirks


def test_unopened_think_from_thinking_template():
    msg = content_tool_call("segment", SEG)
    msg["content"] = "Plate behind cup, so the cup goes first.\n</think>\n\n" + msg["content"]
    turn = serve(msg)
    assert turn.reasoning == "Plate behind cup, so the cup goes first."
    assert turn.calls[0].arguments == SEG and turn.text == ""
    assert {"think_block", "think_unopened"} <= set(turn.quirks)


def test_unclosed_think_runs_to_the_tool_call():
    msg = content_tool_call("finish", {"reason": "r"})
    msg["content"] = "<think>\nonly the wall is left\n" + msg["content"]
    turn = serve(msg)
    assert turn.reasoning == "only the wall is left" and turn.calls[0].name == "finish"
    assert "think_unclosed" in turn.quirks


def test_tool_call_inside_think_is_not_executed():
    inner = '<tool_call>{"name": "finish", "arguments": {"reason": "draft"}}</tool_call>'
    turn = serve(text_message(f"<think>maybe {inner}</think>I need a closer look first."))
    assert turn.calls == [] and turn.text == "I need a closer look first."
    assert "draft" in turn.reasoning


def test_think_plus_reasoning_content_joined():
    msg = content_tool_call("finish", {"reason": "r"}, think="second thought")
    msg["reasoning_content"] = "first thought"
    turn = serve(msg)
    assert turn.reasoning == "first thought\n\nsecond thought"


def test_text_only_answer():
    turn = serve(text_message("The image shows a cup on a table."))
    assert turn.calls == [] and turn.text == "The image shows a cup on a table." and turn.quirks == []


def test_content_parts_list_and_legacy_function_call():
    turn = parse_message({"content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]})
    assert turn.text == "hi there" and turn.calls == []
    turn = parse_message({"content": None, "function_call": {"name": "finish", "arguments": '{"reason": "r"}'}})
    assert turn.calls[0].arguments == {"reason": "r"} and "legacy_function_call" in turn.quirks


def test_nested_call_object_in_arguments_is_unwrapped():
    raw = json.dumps({"name": "finish", "arguments": {"reason": "r"}})
    turn = parse_message({"tool_calls": [{"id": "c1", "function": {"name": "finish", "arguments": raw}}]})
    assert turn.calls[0].arguments == {"reason": "r"} and "nested_call_object" in turn.quirks


def test_tool_call_without_name_is_an_error():
    turn = parse_message({"tool_calls": [{"id": "c1", "function": {"name": "", "arguments": "{}"}}]})
    assert turn.calls[0].arguments is None and turn.calls[0].error


def test_arguments_not_an_object_is_an_error():
    turn = parse_message({"tool_calls": [{"id": "c1", "function": {"name": "finish", "arguments": "[1, 2]"}}]})
    assert turn.calls[0].arguments is None and "JSON object" in (turn.calls[0].error or "")


# ---------------------------------------------------------------------------------------------
# JSON repair


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('{"a": {"b": 1}', {"a": {"b": 1}}),
        ('{"a": {"b": [1, 2', {"a": {"b": [1, 2]}}),
        ('{"a": [1, 2}', {"a": [1, 2]}),
        ('{"s": "}{][", "t": 1', {"s": "}{][", "t": 1}),
        ('{"s": "say \\"hi\\" {", "t": 1', {"s": 'say "hi" {', "t": 1}),
        ('{"a": "unterminated', {"a": "unterminated"}),
        ('{"a": "ends in backslash \\', {"a": "ends in backslash "}),
        ('{"a": 1,', {"a": 1}),
        ('{"a": 1,}', {"a": 1}),
        ('{"a": [1, 2,]}', {"a": [1, 2]}),
        ('{"a":', {"a": None}),
        ('{"a": 1}}', {"a": 1}),
        ('{"a": "\u00e9 \\u00e9"', {"a": "\u00e9 \u00e9"}),
    ],
)
def test_repair_json(broken: str, expected: object):
    assert json.loads(repair_json(broken)) == expected


def test_repair_leaves_valid_json_alone():
    s = '{"a": [1, {"b": "x}"}], "c": null}'
    assert repair_json(s) == s


def test_loads_lenient_reports_end_and_fixes():
    value, end, fixes = loads_lenient('prose {"a": 1} more prose')
    assert value == {"a": 1} and fixes == [] and end == len('prose {"a": 1}')
    value, end, fixes = loads_lenient('{"a": {"b": 1}\nthen prose')
    assert value == {"a": {"b": 1}} and "missing_brace" in fixes
    with pytest.raises(ValueError):
        loads_lenient("no json here")
    with pytest.raises(ValueError):
        loads_lenient('{"a": nope}')


def test_tools_reach_the_server_unchanged():
    tools = tool_set(RunOptions(image="x.png")).tools
    with ScriptedServer([text_message("ok")]) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, tools=tools, stream=False)  # type: ignore[arg-type]
        assert srv.requests[0]["tools"] == tools and srv.requests[0]["stream"] is False


# ---------------------------------------------------------------------------------------------
# The scripted server itself


def test_models_endpoint():
    with ScriptedServer([]) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        assert [m.id for m in client.models.list()] == ["Qwen/Qwen3-VL-8B-Instruct"]


def test_scripted_503_then_answer_and_delay():
    script = [
        {"http_status": 503, "body": {"object": "error", "message": "overloaded", "type": "ServiceUnavailable",
                                       "code": 503}},
        {"delay": 0.05, "message": text_message("late but fine")},
    ]
    with ScriptedServer(script) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=False)  # type: ignore[arg-type]
        assert info.value.status_code == 503
        resp = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=False)  # type: ignore[arg-type]
        assert resp.choices[0].message.content == "late but fine"
        assert resp.choices[0].finish_reason == "stop" and resp.model == MODEL_ID
        assert len(srv.requests) == 2 and srv.requests[0]["messages"] == MESSAGES


def test_stream_true_is_rejected_and_uses_no_item():
    with ScriptedServer([text_message("ok")]) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        assert info.value.status_code == 400 and "stream" in str(info.value)
        resp = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=False)  # type: ignore[arg-type]
        assert resp.choices[0].message.content == "ok"
        assert srv.requests[0]["stream"] is True


def test_exhausted_script_answers_500():
    with ScriptedServer([tool_calls_message("finish", {"reason": "r"})]) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
        resp = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=False)  # type: ignore[arg-type]
        assert resp.choices[0].finish_reason == "tool_calls"
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=False)  # type: ignore[arg-type]
        assert info.value.status_code == 500 and "exhausted" in str(info.value)


def test_stop_is_idempotent():
    srv = ScriptedServer([]).start()
    url = srv.url
    srv.stop()
    srv.stop()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
