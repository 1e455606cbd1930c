"""One assistant message of a chat completion -> reasoning, visible text and tool calls.

Why this is its own module: Qwen3-VL behind vLLM's hermes tool parser (or Ollama, llama.cpp) does
not always return clean ``tool_calls`` (docs/design.md §7). Seen in practice:

* ``tool_calls`` with ``function.arguments`` as a JSON string (the standard), already as an object,
  or as malformed JSON (a missing closing brace);
* the hermes markup left in ``content`` when the server's parser gave up:
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, one or several, with closing braces or
  the closing tag missing;
* calls in Markdown ```json fences (one object or a list; ``"parameters"`` instead of ``"arguments"``);
* reasoning in ``reasoning_content`` / ``reasoning`` fields or in ``<think>...</think>`` blocks of the
  content, including the Qwen3 thinking-template form where ``<think>`` was part of the prompt and
  only ``</think>`` appears.

The agent must act on all of these instead of failing the run, record what it saw (``quirks`` go
into the trace), and hand a parse error back to the model as the tool's result, so the model can
resend the call. JSON is repaired only by balancing brackets, closing an unterminated string and
dropping trailing commas; nothing is ever evaluated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .lenient_json import json_error, loads_lenient, repair_json

__all__ = ["ParsedTurn", "ToolCall", "loads_lenient", "parse_message", "repair_json"]


@dataclass
class ToolCall:
    """One call the model asked for.

    ``raw`` is the text as received: ``function.arguments`` for a standard call (JSON-dumped when the
    server sent an object), the whole ``<tool_call>`` block or fence for a call found in the content.
    ``arguments`` is None and ``error`` says why when the call could not be parsed.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str
    error: str | None = None


@dataclass
class ParsedTurn:
    reasoning: str
    text: str
    calls: list[ToolCall] = field(default_factory=list)
    quirks: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Pieces of the content

_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_TOOL_TAG = re.compile(r"</?tool_call>")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_NAME_HINT = re.compile(r'"name"\s*:\s*"([^"\\]*)"')
_ARGS_KEYS = ("arguments", "parameters", "args", "input")


def _content_text(content: object) -> str:
    """``content`` as text: a string, None, or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return str(content)


def _split_think(content: str, quirks: list[str]) -> tuple[list[str], str]:
    """Take reasoning out of the content: ``<think>..</think>`` blocks, a leading unopened ``..</think>``
    (the template put ``<think>`` in the prompt) and an unclosed ``<think>`` (runs to the first
    ``<tool_call>`` or the end)."""
    reasoning: list[str] = []
    head, sep, tail = content.partition("</think>")
    if sep and "<think>" not in head:
        reasoning.append(head)
        content = tail
        quirks.append("think_block")
        quirks.append("think_unopened")

    def take(m: re.Match[str]) -> str:
        reasoning.append(m.group(1))
        return ""

    content, n = _THINK_BLOCK.subn(take, content)
    if n and "think_block" not in quirks:
        quirks.append("think_block")
    if "<think>" in content:
        before, _, after = content.partition("<think>")
        stop = after.find("<tool_call>")
        if stop < 0:
            reasoning.append(after)
            content = before
        else:
            reasoning.append(after[:stop])
            content = before + after[stop:]
        if "think_block" not in quirks:
            quirks.append("think_block")
        quirks.append("think_unclosed")
    content = content.replace("</think>", "")
    return [r.strip() for r in reasoning if r.strip()], content


def _call_from_obj(obj: object) -> tuple[str, object, bool] | None:
    """(name, arguments, used_parameters_key) when ``obj`` looks like a call, else None.

    Accepts {"name", "arguments"|"parameters"|...} and the OpenAI shape {"function": {...}}.
    """
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict) and "name" not in obj:
        obj = obj["function"]
        assert isinstance(obj, dict)
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    for key in _ARGS_KEYS:
        if key in obj:
            return name.strip(), obj[key], key != "arguments"
    return name.strip(), {}, False


def _decode_arguments(args: object, quirks: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """Arguments as received (object, JSON string, double-encoded string) -> dict, or an error."""
    if isinstance(args, str):
        s = args.strip()
        if not s:
            return {}, None
        try:
            args = json.loads(s)
        except (ValueError, RecursionError) as e:  # not only JSONDecodeError: see json_error
            try:
                args, _, fixes = loads_lenient(s)
            except ValueError:
                return None, f"arguments are not valid JSON ({json_error(e)}); send them as one JSON object"
            quirks.append("arguments_repaired")
            quirks.extend(f for f in fixes if f not in quirks)
        if isinstance(args, str):  # double-encoded: "{\"target\": ...}"
            try:
                args = json.loads(args)
                quirks.append("arguments_double_encoded")
            except (ValueError, RecursionError):
                pass
    if args is None:
        return {}, None
    if not isinstance(args, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean"}.get(type(args), "a number")
        return None, f"arguments must be a JSON object, got {kind}"
    return args, None


def _block_call(body: str, n: int, raw: str, quirks: list[str]) -> tuple[ToolCall, str]:
    """A call from the text inside ``<tool_call>`` tags; also returns any prose after the JSON."""
    inner = body
    fence = _FENCE.search(inner)
    if fence and not inner[: fence.start()].strip():
        inner = fence.group(2)
        quirks.append("json_fence")
    try:
        value, end, fixes = loads_lenient(inner)
    except ValueError as e:
        hint = _NAME_HINT.search(body)
        name = hint.group(1) if hint else ""
        msg = f"could not parse the tool call ({e}); send one JSON object with \"name\" and \"arguments\""
        return ToolCall(f"call_{n}", name, None, raw, msg), ""
    quirks.extend(f for f in fixes if f not in quirks)
    trailing = inner[end:] if inner is body else ""
    found = _call_from_obj(value)
    if found is None:
        hint = _NAME_HINT.search(body)
        msg = 'the tool call needs a "name" and an "arguments" object'
        return ToolCall(f"call_{n}", hint.group(1) if hint else "", None, raw, msg), trailing
    name, args, used_parameters = found
    if used_parameters and "parameters_key" not in quirks:
        quirks.append("parameters_key")
    parsed, error = _decode_arguments(args, quirks)
    return ToolCall(f"call_{n}", name, parsed, raw, error), trailing


def _tag_calls(content: str, quirks: list[str]) -> tuple[list[ToolCall], str]:
    """Calls in hermes ``<tool_call>`` markup; the content with the markup removed."""
    spans: list[tuple[int, int, int, int, bool, bool]] = []  # block start/end, body start/end, open, close
    open_at: int | None = None
    open_tag_start = 0
    last_end = 0
    for m in _TOOL_TAG.finditer(content):
        if m.group(0) == "<tool_call>":
            if open_at is not None:  # a new call before this one was closed
                spans.append((open_tag_start, m.start(), open_at, m.start(), True, False))
            open_at, open_tag_start = m.end(), m.start()
        else:
            if open_at is not None:
                spans.append((open_tag_start, m.end(), open_at, m.start(), True, True))
                open_at = None
            else:  # closing tag without an opening one: the JSON just before it
                seg = content[last_end : m.start()]
                brace = seg.find("{")
                if brace >= 0:
                    spans.append((last_end + brace, m.end(), last_end + brace, m.start(), False, True))
                else:
                    spans.append((m.start(), m.end(), m.start(), m.start(), False, True))
        last_end = m.end()
    if open_at is not None:
        spans.append((open_tag_start, len(content), open_at, len(content), True, False))
    if not spans:
        return [], content
    quirks.append("tool_call_in_content")
    calls: list[ToolCall] = []
    kept: list[str] = []
    pos = 0
    for start, end, b0, b1, opened, closed in spans:
        kept.append(content[pos:start])
        pos = end
        body = content[b0:b1]
        if not body.strip():
            continue
        if not opened and "missing_open_tag" not in quirks:
            quirks.append("missing_open_tag")
        if not closed and "missing_close_tag" not in quirks:
            quirks.append("missing_close_tag")
        call, trailing = _block_call(body, len(calls), content[start:end], quirks)
        calls.append(call)
        if not closed:
            kept.append(trailing)
    kept.append(content[pos:])
    return calls, "".join(kept)


def _json_calls(value: object) -> list[tuple[str, object, bool]] | None:
    """The calls in a parsed JSON value (an object or a list of objects), or None if it has none."""
    items = value if isinstance(value, list) else [value]
    found = [_call_from_obj(v) for v in items]
    if not found or any(f is None for f in found):
        return None
    return [f for f in found if f is not None]


def _fence_calls(content: str, quirks: list[str]) -> tuple[list[ToolCall], str]:
    """Calls in Markdown code fences holding a call object or a list of them; other fences stay."""
    calls: list[ToolCall] = []
    kept: list[str] = []
    pos = 0
    for m in _FENCE.finditer(content):
        lang, body = m.group(1).lower(), m.group(2)
        if lang not in ("", "json", "json5", "tool_call", "javascript", "js"):
            continue
        try:
            value, _, fixes = loads_lenient(body)
        except ValueError:
            hint = _NAME_HINT.search(body)
            if not hint:
                continue
            msg = 'could not parse the tool call JSON; send one JSON object with "name" and "arguments"'
            calls.append(ToolCall(f"call_{len(calls)}", hint.group(1), None, m.group(0), msg))
            kept.append(content[pos : m.start()])
            pos = m.end()
            continue
        found = _json_calls(value)
        if found is None:
            continue
        quirks.extend(f for f in fixes if f not in quirks)
        if not (m.group(0).endswith("```") and len(m.group(0)) >= 6) and "unclosed_fence" not in quirks:
            quirks.append("unclosed_fence")
        if isinstance(value, list) and "fence_list" not in quirks:
            quirks.append("fence_list")
        for name, args, used_parameters in found:
            if used_parameters and "parameters_key" not in quirks:
                quirks.append("parameters_key")
            parsed, error = _decode_arguments(args, quirks)
            raw = m.group(0) if len(found) == 1 else json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
            calls.append(ToolCall(f"call_{len(calls)}", name, parsed, raw, error))
        kept.append(content[pos : m.start()])
        pos = m.end()
    if calls and "json_fence" not in quirks:
        quirks.append("json_fence")
    kept.append(content[pos:])
    return calls, "".join(kept)


def _bare_json_calls(content: str, quirks: list[str]) -> tuple[list[ToolCall], str]:
    """The whole content is a call object (or a list of them) without tags or fences."""
    s = content.strip()
    if not s.startswith(("{", "[")):
        return [], content
    try:
        value, end, fixes = loads_lenient(s)
    except ValueError:
        return [], content
    found = _json_calls(value)
    if found is None or s[end:].strip():
        return [], content
    quirks.append("bare_json")
    quirks.extend(f for f in fixes if f not in quirks)
    calls: list[ToolCall] = []
    for name, args, used_parameters in found:
        if used_parameters and "parameters_key" not in quirks:
            quirks.append("parameters_key")
        parsed, error = _decode_arguments(args, quirks)
        raw = s if len(found) == 1 else json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
        calls.append(ToolCall(f"call_{len(calls)}", name, parsed, raw, error))
    return calls, ""


def _standard_calls(tool_calls: list[Any], quirks: list[str]) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for i, tc in enumerate(tool_calls):
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        assert isinstance(fn, dict)
        call_id = tc.get("id") if isinstance(tc.get("id"), str) and tc.get("id") else f"call_{i}"
        name = fn.get("name") if isinstance(fn.get("name"), str) else ""
        args = fn.get("arguments")
        if isinstance(args, str):
            raw = args
        else:
            raw = json.dumps(args, ensure_ascii=False)
            if isinstance(args, dict) and "arguments_as_object" not in quirks:
                quirks.append("arguments_as_object")
        name = name.strip()
        if not name:
            calls.append(ToolCall(call_id, "", None, raw, "the tool call has no function name"))
            continue
        parsed, error = _decode_arguments(args, quirks)
        # {"name": "segment", "arguments": {...}} sent as the arguments of segment: unwrap it
        if parsed is not None and set(parsed) <= {"name", *_ARGS_KEYS} and parsed.get("name") == name:
            inner = next((parsed[k] for k in _ARGS_KEYS if k in parsed), {})
            unwrapped, err2 = _decode_arguments(inner, quirks)
            if unwrapped is not None:
                parsed, error = unwrapped, err2
                quirks.append("nested_call_object")
        calls.append(ToolCall(call_id, name, parsed, raw, error))
    return calls


def _dedupe(quirks: list[str]) -> list[str]:
    return list(dict.fromkeys(quirks))


def parse_message(message: dict[str, Any]) -> ParsedTurn:
    """Parse ``choices[0].message`` (as ``model_dump()`` gives it) into reasoning, text and calls.

    Calls from ``tool_calls`` (or the legacy ``function_call``) take priority; only when there are
    none is the content searched: ``<tool_call>`` markup first, then JSON fences, then a content that
    is a bare call object. Tool-call markup is always removed from ``text``.
    """
    quirks: list[str] = []
    reasoning: list[str] = []
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value.strip():
            quirks.append(key)
            if value.strip() not in reasoning:
                reasoning.append(value.strip())

    think, content = _split_think(_content_text(message.get("content")), quirks)
    reasoning.extend(r for r in think if r not in reasoning)

    calls: list[ToolCall] = []
    raw_calls = message.get("tool_calls")
    if isinstance(raw_calls, list) and raw_calls:
        calls = _standard_calls(raw_calls, quirks)
    elif isinstance(message.get("function_call"), dict):
        quirks.append("legacy_function_call")
        calls = _standard_calls([{"function": message["function_call"]}], quirks)

    content_quirks: list[str] = []
    found, content = _tag_calls(content, content_quirks)
    if not found:
        found, content = _fence_calls(content, content_quirks)
    if not found:
        found, content = _bare_json_calls(content, content_quirks)
    if calls:
        if found:
            quirks.append("content_calls_ignored")
    else:
        calls = found
        quirks.extend(content_quirks)

    text = re.sub(r"\n{3,}", "\n\n", content).strip()
    return ParsedTurn(reasoning="\n\n".join(reasoning), text=text, calls=calls, quirks=_dedupe(quirks))
