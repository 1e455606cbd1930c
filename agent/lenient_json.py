"""JSON as models write it: repaired by balancing brackets, never evaluated.

Qwen3-VL's tool calls sometimes lose a closing brace or leave a trailing comma; the parser
(``agent.parse``) reads them through here. Repairs are limited to balancing brackets outside
strings, closing an unterminated string and dropping trailing commas, and each one is reported, so
the trace says what was fixed.
"""

from __future__ import annotations

import json
from typing import Any

_CLOSER = {"{": "}", "[": "]"}


def json_error(e: Exception) -> str:
    """Why strict JSON failed. Besides JSONDecodeError, the json module raises a plain ValueError for an
    integer past Python's digit limit and RecursionError for deep nesting; none may escape the parser."""
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at column {e.colno}"
    return "nested too deeply" if isinstance(e, RecursionError) else "a number with too many digits"


def _repair(text: str) -> tuple[str, list[str]]:
    """Balance brackets outside strings, close an unterminated string, drop trailing commas.

    Returns the repaired text and what was fixed ("missing_brace", "unterminated_string",
    "trailing_comma", "extra_closer"); the text is unchanged when nothing needed fixing.
    """
    out: list[str] = []
    stack: list[str] = []
    fixes: list[str] = []
    in_string = False
    escape = False

    def drop_trailing_comma() -> None:
        j = len(out) - 1
        while j >= 0 and out[j] in " \t\r\n":
            j -= 1
        if j >= 0 and out[j] == ",":
            del out[j]
            if "trailing_comma" not in fixes:
                fixes.append("trailing_comma")

    for ch in text:
        if in_string:
            out.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
        elif ch in "{[":
            stack.append(_CLOSER[ch])
            out.append(ch)
        elif ch in "}]":
            if stack and stack[-1] == ch:
                drop_trailing_comma()
                stack.pop()
                out.append(ch)
            elif ch in stack:  # closers missing before this one: insert them
                while stack[-1] != ch:
                    drop_trailing_comma()
                    out.append(stack.pop())
                drop_trailing_comma()
                stack.pop()
                out.append(ch)
                if "missing_brace" not in fixes:
                    fixes.append("missing_brace")
            elif "extra_closer" not in fixes:  # matches nothing open: drop it
                fixes.append("extra_closer")
        else:
            out.append(ch)
    if in_string:
        if escape:  # a lone trailing backslash would escape the closing quote
            out.pop()
        out.append('"')
        fixes.append("unterminated_string")
    if stack:
        while out and out[-1] in " \t\r\n":
            out.pop()
        if out and out[-1] == ":":
            out.append(" null")
        while stack:
            drop_trailing_comma()
            out.append(stack.pop())
        if "missing_brace" not in fixes:
            fixes.append("missing_brace")
    return "".join(out), fixes


def repair_json(text: str) -> str:
    """Best-effort repair of truncated JSON (see :func:`_repair`); never evaluates anything."""
    return _repair(text)[0]


_DECODER = json.JSONDecoder()


def loads_lenient(text: str) -> tuple[Any, int, list[str]]:
    """Parse the first JSON object or array in ``text``, repairing it if needed.

    Returns ``(value, end, fixes)``: ``end`` is where the JSON ended in ``text`` (anything after it is
    not JSON, e.g. prose after a call whose closing tag is missing) and ``fixes`` lists the repairs
    made ([] for valid JSON). Raises ValueError when nothing parses, also for nesting deeper than the
    json module's recursion limit (``[[[[...``), which it reports as a RecursionError: a model's text
    must never crash the run.
    """
    try:
        return _loads_lenient(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _loads_lenient(text: str) -> tuple[Any, int, list[str]]:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON object found")
    start = min(starts)
    try:
        value, end = _DECODER.raw_decode(text, start)
        return value, end, []
    except json.JSONDecodeError as e:
        first_error = e
    body = text[start:]
    repaired, fixes = _repair(body)
    try:
        return json.loads(repaired), len(text), fixes
    except json.JSONDecodeError:
        pass
    # Trailing prose after truncated JSON: cut after each later closer, last first, and retry.
    cuts = [i for i, ch in enumerate(body) if ch in "}]"]
    for cut in reversed(cuts[-64:]):
        repaired, fixes = _repair(body[: cut + 1])
        try:
            value = json.loads(repaired)
        except json.JSONDecodeError:
            continue
        return value, start + cut + 1, fixes
    raise ValueError(f"{first_error.msg} at line {first_error.lineno} column {first_error.colno}")


