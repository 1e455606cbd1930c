"""Property tests of the three readers that take outside input: the tool-call parser, the SVG reader and
the trace reader.

Whatever a model, an editor or a crash leaves behind, a reader either answers or refuses with its own
error type (the CLI turns those into one line); any other exception is a bug in the reader. The
round trips pin down that what we write is read back unchanged.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from agent.parse import ParsedTurn, ToolCall, parse_message
from agent.trace import EVENT_TYPES, TraceError, TraceWriter, read_trace
from tools.svg import SVG_NS, SvgDocument, SvgError, SvgLayer, layer_id, parse_svg, read_svg, to_svg_string
from tools.vectorize.pathset import PathSet

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values as a server or a trace holds them. NaN is left out because it is not equal to itself.
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
JSON_OBJECT = st.dictionaries(st.text(max_size=8), JSON, max_size=5)

# Pathological pieces: nesting past the recursion limit, an integer past Python's digit limit
HUGE = ["[" * 3000, '{"a":' * 1500, "9" * 5000]

# ------------------------------------------------------------------------------------ tool-call parser

MARKUP = [
    "<think>", "</think>", "<tool_call>", "</tool_call>", '{"name": "segment", "arguments": {', '{"name": ',
    '"segment"', '"arguments": ', '"parameters": ', '{"function": {"name": "inpaint"}}', '"{\\"a\\": 1}"',
    "{", "}", "[", "]", '"', "\\", ",", ":", "null", "```", "```json\n", "```js\n", "\n", "é", "\u2028", "\x00", "🙂",
    *HUGE,
]
content_text = st.lists(st.sampled_from(MARKUP) | st.text(max_size=12), max_size=16).map("".join)
function = st.fixed_dictionaries({}, optional={
    "name": st.none() | st.sampled_from(["segment", "inpaint", " ", ""]) | st.text(max_size=8) | JSON,
    "arguments": st.none() | content_text | JSON.map(json.dumps) | JSON,
})
tool_call = JSON | st.fixed_dictionaries({}, optional={
    "id": st.none() | st.text(max_size=8) | JSON, "type": st.just("function"), "function": function | JSON,
})
content = st.none() | content_text | JSON | st.lists(
    content_text | st.fixed_dictionaries({"type": st.just("text"), "text": content_text | JSON}) | JSON, max_size=4)
message = st.tuples(
    st.fixed_dictionaries({}, optional={
        "role": st.just("assistant"),
        "content": content,
        "tool_calls": st.none() | st.lists(tool_call, max_size=4) | JSON,
        "function_call": function | JSON,
        "reasoning_content": st.none() | content_text | JSON,
        "reasoning": st.none() | content_text | JSON,
    }),
    st.dictionaries(st.text(max_size=8), JSON, max_size=3),
).map(lambda parts: {**parts[1], **parts[0]})


def _check_turn(turn: object) -> None:
    assert isinstance(turn, ParsedTurn)
    assert isinstance(turn.reasoning, str) and isinstance(turn.text, str)
    assert all(isinstance(q, str) for q in turn.quirks)
    for call in turn.calls:
        assert isinstance(call, ToolCall)
        assert isinstance(call.id, str) and isinstance(call.name, str) and isinstance(call.raw, str)
        # a call is either usable or says why not, so the model can be told to resend it
        assert isinstance(call.arguments, dict) if call.error is None else isinstance(call.error, str)
        assert call.arguments is not None or call.error is not None


@FAST
@given(message)
@example({"tool_calls": [{"function": {"name": "segment", "arguments": "9" * 5000}}]})  # past int's digit limit
@example({"tool_calls": [{"function": {"name": "segment", "arguments": "[" * 3000}}]})
def test_parser_never_raises_on_any_message(msg: dict[str, Any]) -> None:
    # parse_message reports problems inside its result (ToolCall.error) instead of raising
    _check_turn(parse_message(msg))


@FAST
@given(content_text)
@example("[" * 3000)  # deeper than the json module's recursion limit
def test_parser_never_raises_on_any_content(text: str) -> None:
    _check_turn(parse_message({"role": "assistant", "content": text}))


names = st.text(alphabet="abcdefghij_", min_size=1, max_size=12)


def _not_a_nested_call(name: str, args: dict[str, Any]) -> bool:
    """``{"name": <same name>, "arguments": ...}`` as arguments is unwrapped on purpose (a known model quirk)."""
    return not (args.get("name") == name and set(args) <= {"name", "arguments", "parameters", "args", "input"})


@FAST
@given(names, JSON_OBJECT)
def test_a_standard_tool_call_round_trips(name: str, args: dict[str, Any]) -> None:
    assume(_not_a_nested_call(name, args))
    sent = {"id": "call_7", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
    [call] = parse_message({"role": "assistant", "content": None, "tool_calls": [sent]}).calls
    assert (call.id, call.name, call.arguments, call.error) == ("call_7", name, args, None)


def _free_of_markup(value: Any) -> bool:
    """A string holding the hermes tags themselves cannot be told apart from the markup around it."""
    return not any(tag in json.dumps(value, ensure_ascii=False) for tag in ("<think>", "</think>", "tool_call>"))


@FAST
@given(names, JSON_OBJECT, st.sampled_from(["", "Peeling the cup.\n", "<think>where is it?</think>\n"]))
def test_a_tool_call_in_content_markup_round_trips(name: str, args: dict[str, Any], before: str) -> None:
    assume(_free_of_markup(args))
    text = f"{before}<tool_call>\n{json.dumps({'name': name, 'arguments': args}, ensure_ascii=False)}\n</tool_call>"
    [call] = parse_message({"role": "assistant", "content": text}).calls
    assert (call.name, call.arguments, call.error) == (name, args, None)


# ------------------------------------------------------------------------------------------ SVG reader


PathSpec = tuple[list[torch.Tensor], list[float], bool]  # a path's outlines (each (3K, 2)), RGBA, even-odd


def _paths(specs: list[PathSpec]) -> PathSet:
    if not specs:
        return PathSet.empty(torch.float64)
    outlines = [(owner, o) for owner, (outs, _, _) in enumerate(specs) for o in outs]
    return PathSet(torch.cat([o for _, o in outlines]), torch.tensor([len(o) // 3 for _, o in outlines]),
                   torch.tensor([owner for owner, _ in outlines]),
                   torch.tensor([rgba for _, rgba, _ in specs], dtype=torch.float64),
                   torch.tensor([evenodd for _, _, evenodd in specs]))


def _doc(width: int, height: int, layers: list[tuple[str, list[PathSpec]]]) -> SvgDocument:
    return SvgDocument(width, height, [SvgLayer(layer_id(i, label), label, _paths(specs))
                                       for i, (label, specs) in enumerate(layers)])


def _square(x: float, y: float, s: float) -> torch.Tensor:
    corners = torch.tensor([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=torch.float64)
    nxt = corners.roll(-1, 0)
    return torch.stack([corners, corners + (nxt - corners) / 3, corners + 2 * (nxt - corners) / 3], 1).reshape(-1, 2)


# A small real document in our own output form, and the same picture as an editor might save it
OURS = to_svg_string(_doc(16, 12, [
    ("background", [([_square(0, 0, 16)], [0.2, 0.4, 0.6, 1.0], False)]),
    ('Cup & "saucer"', [([_square(2, 2, 8), _square(4, 4, 3)], [1.0, 0.0, 0.0, 0.5], True),
                        ([_square(9.5, 1.25, 2)], [0.0, 1.0, 0.0, 1.0], False)]),
]))
EDITED = f"""<svg xmlns="{SVG_NS}" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="40px"
  height="30" viewBox="0 0 40 30"><defs><path id="leaf" d="M0 0q4 -4 8 0t-8 0z" fill="green"/></defs>
  <g id="layer1" inkscape:groupmode="layer" inkscape:label="square" transform="translate(2,3)" opacity="0.9">
    <g transform="scale(2) rotate(10 1 1)"><path style="fill:#ff0000;fill-opacity:50%" d="m 2,2 h 4 v 4 h -4 z"/></g>
    <use href="#leaf" x="10" y="8"/><circle cx="28" cy="15" r="6" fill="hsl(200, 50%, 50%)" stroke="black"/>
  </g>
  <ellipse cx="5" cy="5" rx="2" ry="1" fill="rgb(0,0,255)"/><rect x="1" y="1" width="3" height="3" rx="1" fill="#0f08"/>
  <path d="M30 15 A5 3 30 1 0 35 20 L 30 15 Z" fill="navy" fill-rule="evenodd"/><text x="1" y="9">Mug</text>
</svg>"""
SEEDS = [OURS, EDITED]

# what an attribute may be turned into: numbers at the edges of float, units, colours, path commands
ATTR_PIECES = ["0", "-1", "1e999", "-1e999", "1e-999", "nan", "inf", "1" * 400, ".", "-", "+", "e", "%", "px", "mm",
               "#", "#fff", "url(#leaf)", "rgb(", "rgb(1.5,2,3)", "hsl(", ")", ",", " ", "none", "M", "m", "C", "c",
               "Z", "A", "a", "Q", "T", "S", "H", "V", "L", "1 0 0 1", "0 0 0 0", "matrix(", "scale(0)",
               "rotate(", "translate(", "#leaf", "layer", "hidden", "evenodd", "é", "\u2028"]
number = st.integers().map(str) | st.floats().map(repr) | st.sampled_from(["1e999", "-0", ".5", "1.", "5e-324"])
path_like = st.lists(st.sampled_from("MmLlHhVvCcSsQqTtAaZz,") | number, max_size=16).map(" ".join)
attr_value = st.lists(st.sampled_from(ATTR_PIECES) | st.text(max_size=6), max_size=10).map("".join) | path_like


def _xml_attr(text: str) -> str:
    """Escaped just enough to stay an attribute, so the value reaches svgelements instead of the XML parser."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def mutated_svg(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        # most edits keep the XML well-formed, so that the value reaches svgelements and our reader
        kind = draw(st.sampled_from(["truncate", "insert", "delete", "nest", *["attribute"] * 6]))
        at = draw(st.integers(0, len(text)))
        if kind == "truncate":
            text = text[:at]
        elif kind == "insert":
            piece = draw(st.text(max_size=8) | st.sampled_from(["<", ">", "/>", "</g>", "<g>", '"', "&"]))
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif kind == "nest":  # groups nested past the recursion limit
            n = draw(st.integers(900, 3000))
            text = re.sub(r"(<g [^>]*>)", lambda m, n=n: m.group(1) + "<g>" * n + "</g>" * n, text, count=1)
        else:
            spans = [m.span(1) for m in re.finditer(r'="([^"]*)"', text)]
            if spans:
                a, b = draw(st.sampled_from(spans))
                text = text[:a] + _xml_attr(draw(attr_value)) + text[b:]
    return text


def _parses_or_refuses(parse: Callable[[], SvgDocument]) -> None:
    try:
        doc = parse()
    except SvgError as exc:
        assert str(exc) and "\n" not in str(exc)  # the CLI shows it as one line
        return
    assert isinstance(doc, SvgDocument) and doc.width > 0 and doc.height > 0
    for layer in doc.layers:
        assert torch.isfinite(layer.paths.points).all() and torch.isfinite(layer.paths.colors).all()


@FAST
@given(st.text() | st.lists(st.sampled_from(["<svg", f' xmlns="{SVG_NS}"', ' width="4"', ' height="4"', ">", "/>",
                                             "<g>", "</g>", '<path d="M0 0H1V1Z"/>', "</svg>"])
                            | st.text(max_size=6), max_size=20).map("".join))
def test_svg_reader_on_any_text(text: str) -> None:
    _parses_or_refuses(lambda: parse_svg(text))


@contextmanager
def _file_holding(data: bytes, name: str) -> Iterator[Path]:
    """A fresh file per example (pytest's tmp_path is one folder for all of a test's examples)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        yield path


@FAST
@given(st.binary(max_size=200))
def test_svg_reader_on_any_bytes(data: bytes) -> None:
    with _file_holding(data, "in.svg") as path:
        _parses_or_refuses(lambda: read_svg(path))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_svg())
@example(EDITED.replace('d="m 2,2 h 4 v 4 h -4 z"', 'd="hidden"'))  # an AttributeError inside svgelements
@example(EDITED.replace('cx="5"', 'cx="1e999"'))  # an infinite coordinate
@example(EDITED.replace('opacity="0.9"', 'opacity="nan"'))
@example(OURS.replace('width="16"', 'width="0.4"'))  # rounds to no pixel at all
@example(EDITED.replace('d="m 2,2 h 4 v 4 h -4 z"', 'd="T 0 0"'))  # no moveto: svgelements leaves points None
def test_svg_reader_on_mutations_of_a_real_file(text: str) -> None:
    _parses_or_refuses(lambda: parse_svg(text))


def test_path_data_without_a_moveto_is_skipped_and_said():
    doc = parse_svg(EDITED.replace('d="m 2,2 h 4 v 4 h -4 z"', 'd="T 0 0"'))
    whole = parse_svg(EDITED)
    assert doc.all_paths().num_paths == whole.all_paths().num_paths - 1
    assert any("does not begin with a moveto" in w for w in doc.warnings)


grid = st.integers(-5000, 50000).map(lambda v: v / 100)
channel = st.integers(0, 255).map(lambda v: v / 255)
alpha = st.integers(0, 1000).map(lambda v: v / 1000)


@st.composite
def outline(draw: st.DrawFn) -> torch.Tensor:
    k = draw(st.integers(1, 4))
    return torch.tensor(draw(st.lists(st.tuples(grid, grid), min_size=3 * k, max_size=3 * k)), dtype=torch.float64)


rgba = st.tuples(channel, channel, channel, alpha).map(list)
path_spec = st.tuples(st.lists(outline(), min_size=1, max_size=3), rgba, st.booleans())  # outlines, colour, even-odd
# XML 1.0 has no control characters (and normalises tabs and newlines in attributes); an empty label is read as
# the layer's id, as Inkscape shows it
label = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=12)


@FEW
@given(st.integers(1, 4000), st.integers(1, 4000),
       st.lists(st.tuples(label, st.lists(path_spec, max_size=3)), max_size=3))
def test_svg_round_trip_is_exact(width: int, height: int, layers: list[tuple[str, list[PathSpec]]]) -> None:
    text = to_svg_string(_doc(width, height, layers))
    back = parse_svg(text)
    assert back.warnings == []
    assert to_svg_string(back) == text


# ---------------------------------------------------------------------------------------- trace reader

EVENT_LINE = st.fixed_dictionaries({"type": st.sampled_from(EVENT_TYPES) | st.text(max_size=6), "payload": JSON},
                                   optional={"seq": JSON, "ts": JSON})


def _read_or_refuse(path: Path) -> None:
    try:
        events = read_trace(path)
    except TraceError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(events, list)
    assert all(isinstance(e, dict) and e["type"] in EVENT_TYPES and "payload" in e for e in events)


trace_bytes = st.lists(st.binary(max_size=16) | st.sampled_from(
    [b"\n", b'{"type": "decision", "payload": {}}', b"\xff", b"\xe2\x80", b"\r\n", *(h.encode() for h in HUGE)]),
    max_size=12).map(b"".join)


@FAST
@given(trace_bytes)
@example(b"[" * 3000 + b"\n\n")  # a bad line that is not the last one
@example(b"9" * 5000 + b"\n\n")
def test_trace_reader_on_any_bytes(data: bytes) -> None:
    with _file_holding(data, "trace.jsonl") as path:
        _read_or_refuse(path)


@FAST
@given(st.lists(EVENT_LINE | JSON, max_size=8), st.booleans())
def test_trace_reader_on_any_json_lines(values: list[Any], newline_at_end: bool) -> None:
    data = "\n".join(json.dumps(v, ensure_ascii=False) for v in values) + ("\n" if newline_at_end else "")
    with _file_holding(data.encode(), "trace.jsonl") as path:
        _read_or_refuse(path)


events = st.lists(st.tuples(st.text(max_size=6), st.sampled_from(EVENT_TYPES), JSON_OBJECT), max_size=6)


def _written(tmp: str, specs: list[tuple[str, str, dict]]) -> tuple[Path, list[dict]]:
    path = Path(tmp) / "trace.jsonl"
    with TraceWriter(path) as w:
        for node, type_, payload in specs:
            w.emit(node, type_, payload)
    return path, w.events


@FEW
@given(events)
def test_a_written_trace_reads_back(specs: list[tuple[str, str, dict]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, written = _written(tmp, specs)
        assert read_trace(path) == written


@FEW
@given(events.filter(bool), st.data())
def test_a_trace_cut_anywhere_keeps_every_complete_event(specs: list[tuple[str, str, dict]], data: st.DataObject,
                                                         ) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, written = _written(tmp, specs)
        full = path.read_bytes()
        cut = data.draw(st.integers(0, len(full)), label="cut")
        path.write_bytes(full[:cut])
        whole = full[:cut].count(b"\n")
        tail = full[:cut].rsplit(b"\n", 1)[-1]
        complete_tail = bool(tail) and full[cut : cut + 1] == b"\n"  # only the newline was lost
        assert read_trace(path) == written[: whole + complete_tail]
        # and a resumed writer goes on right after them
        with TraceWriter(path, mode="a") as w:
            w.emit("resume", "decision", {"after": cut})
        assert read_trace(path) == [*written[: whole + complete_tail], w.events[-1]]


def test_a_trace_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        read_trace(tmp_path)
