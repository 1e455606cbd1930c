"""The tools' one declaration: the schema the model sees, the validation of its calls and the
implementations must agree, and the model is offered only what this machine has.

Every check below is generated from the declarations (``agent.toolspec``), not from a second
hand-written list, so a new argument, a changed limit or a changed implementation signature that
drifts from the schema fails here.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, ClassVar

import pytest

from agent.context import RunOptions
from agent.run import tool_set
from agent.toolbox import IMPLEMENTATIONS, Outcome
from agent.toolspec import DECLARATIONS, Capabilities, ToolSet, machine_capabilities
from tools import inpaint as inpaint_module
from tools.inpaint import TeleaInpainter

SEG = {"target": "white ceramic cup, front left", "keywords": ["cup", "mug"], "bbox_2d": [102, 388, 341, 702]}


def toolset() -> ToolSet:
    return tool_set(RunOptions(image="photo.png"))


def example(schema: dict[str, Any]) -> Any:
    """A valid value for ``schema``, the smallest the limits allow."""
    if "enum" in schema:
        return schema["enum"][0]
    t = schema["type"]
    if t == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if t == "integer":
        return schema.get("minimum", 1)
    if t == "number":
        return schema.get("minimum", 0.5)
    if t == "boolean":
        return True
    if t == "array":
        return [example(schema["items"]) for _ in range(schema.get("minItems", 1))]
    raise AssertionError(f"no example for {schema}")


def cases() -> list[tuple[str, dict]]:
    return [(name, tool["function"]["parameters"]) for name, tool in zip(toolset().names, toolset().tools, strict=True)]


@pytest.mark.parametrize(("name", "schema"), cases(), ids=[n for n, _ in cases()])
def test_schema_validation_and_implementation_agree(name: str, schema: dict):
    tools = toolset()
    base, reply = DECLARATIONS[name]
    props, required = schema["properties"], set(schema.get("required", []))
    # the implementation takes exactly the declared arguments and returns the declared reply
    fn = IMPLEMENTATIONS[name]
    hints = typing.get_type_hints(fn)
    assert hints["args"] is base and list(inspect.signature(fn).parameters) == ["run", "state", "args"]
    assert typing.get_origin(hints["return"]) is Outcome and typing.get_args(hints["return"]) == (reply,)
    # every argument the model is offered is one the implementation reads, with the same requiredness
    assert set(props) <= set(base.model_fields)
    assert required == {k for k in props if tools.specs[name].args.model_fields[k].is_required()}
    assert schema["additionalProperties"] is False and all(p.get("description") for p in props.values())
    # the tool's description tells the model every field of its reply
    description = tools.tools[tools.names.index(name)]["function"]["description"]
    assert all(f"{field}" in description for field in reply.model_fields)
    # the validator accepts what the schema allows ...
    full = {k: example(v) for k, v in props.items()}
    minimal = {k: full[k] for k in required}
    for args in (full, minimal):
        value, errors = tools.validate(name, args)
        assert errors == [] and isinstance(value, base), errors
    # ... and refuses, with the argument named, what it does not
    for key in required:
        _, errors = tools.validate(name, {k: v for k, v in minimal.items() if k != key})
        assert errors == [f"{key}: missing required argument ({_words(tools, name, key)})"]
    for key, prop in props.items():
        bad = []
        if "enum" in prop:
            bad.append("not-a-choice")
        if "maximum" in prop:
            bad.append(prop["maximum"] + 1)
        if "minimum" in prop:
            bad.append(prop["minimum"] - 1)
        if prop["type"] == "string":
            bad += [7, ""]
        if prop["type"] == "array":
            bad.append([example(prop["items"])] * (prop.get("maxItems", 99) + 1))
        for value in bad:
            _, errors = tools.validate(name, {**minimal, key: value})
            assert len(errors) == 1 and errors[0].startswith(f"{key}"), (key, value, errors)
    _, errors = tools.validate(name, {**minimal, "unexpected": 1})
    assert errors == [f"unexpected: unknown argument; allowed: {', '.join(props)}"]


def _words(tools: ToolSet, name: str, key: str) -> str:
    from agent.validation import describe

    return describe(tools.tools[tools.names.index(name)]["function"]["parameters"]["properties"][key])


def test_only_installed_inpainters_are_offered(monkeypatch):
    everything = toolset().hash()
    monkeypatch.setattr(inpaint_module, "INPAINTERS", {"telea": TeleaInpainter})
    tools = ToolSet(machine_capabilities(1024, 812))
    method = tools.tools[tools.names.index("inpaint")]["function"]["parameters"]["properties"]["method"]
    assert method["enum"] == ["telea", "auto"] and "patchmatch" not in method["description"]
    _, errors = tools.validate("inpaint", {"mask_id": "m", "layer_name": "cup", "method": "patchmatch"})
    assert errors == ['method: expected one of telea|auto, got string "patchmatch"']
    # no installed backend takes a prompt, so the model is not offered one
    assert "prompt" not in tools.specs["inpaint"].args.model_fields
    assert tools.hash() != everything  # the manifest's schema hash tells the two machines apart


def test_a_backend_that_takes_a_prompt_brings_the_prompt_argument(monkeypatch):
    class Generative(TeleaInpainter):
        name: ClassVar[str] = "gen"
        summary: ClassVar[str] = "generative"
        takes_prompt: ClassVar[bool] = True

    monkeypatch.setattr(inpaint_module, "INPAINTERS", {"gen": Generative, "telea": TeleaInpainter})
    tools = ToolSet(machine_capabilities(1024, 812))
    prompt = tools.tools[tools.names.index("inpaint")]["function"]["parameters"]["properties"]["prompt"]
    assert prompt["description"].startswith("Only with method gen:")
    value, errors = tools.validate("inpaint", {"mask_id": "m", "layer_name": "cup", "method": "gen", "prompt": "table"})
    assert errors == [] and value.prompt == "table"


def test_bbox_is_required_until_a_detector_is_installed():
    without = ToolSet(Capabilities((), (("telea", "smooth", False),), 1024, 812))
    with_one = ToolSet(Capabilities(("dino",), (("telea", "smooth", False),), 1024, 812))
    assert without.tools[0]["function"]["parameters"]["required"] == ["target", "bbox_2d"]
    assert with_one.tools[0]["function"]["parameters"]["required"] == ["target"]
    assert "No open-vocabulary detector is installed" in without.tools[0]["function"]["description"]
    assert without.validate("segment", {"target": "cup"})[1] == [
        "bbox_2d: missing required argument (4 numbers in 0..1000)"]
    assert with_one.validate("segment", {"target": "cup"})[1] == []


def test_points_are_offered_only_where_the_segmenter_reads_them():
    inpainters = (("telea", "smooth", False),)
    clicks = ToolSet(Capabilities((), inpainters, 1024, 812))  # GrabCut or SAM: they read clicks
    none = ToolSet(Capabilities(("sam3",), inpainters, 1024, 812, points=False))  # SAM 3's concept model does not
    seg, seg_none = clicks.tools[0]["function"], none.tools[0]["function"]
    assert {"points", "exclude_points"} <= set(seg["parameters"]["properties"])
    assert not {"points", "exclude_points"} & set(seg_none["parameters"]["properties"])
    assert "points on what the mask missed" in seg["description"]
    assert "points" not in seg_none["description"]
    value, errors = clicks.validate("segment", {**SEG, "points": [[10, 20.5]], "exclude_points": [[3, 4]]})
    assert errors == [] and value.points == [[10, 20.5]] and value.exclude_points == [[3, 4]]
    assert clicks.validate("segment", {**SEG, "points": [[1, 2, 3]]})[1] == [
        "points[0]: expected 2 numbers in 0..1000, got 3"]
    assert clicks.validate("segment", {**SEG, "points": []})[1] == [
        "points: expected a list of 1..8 lists of 2 numbers in 0..1000, got 0"]
    assert none.validate("segment", {**SEG, "points": [[1, 2]]})[1] == [
        "points: unknown argument; allowed: target, keywords, bbox_2d"]


def test_the_model_is_told_this_runs_step_count_and_budget():
    tools = tool_set(RunOptions(image="photo.png"))
    props = tools.tools[tools.names.index("vectorize")]["function"]["parameters"]["properties"]
    steps = RunOptions(image="photo.png").vectorize.steps
    assert f"omit for {steps}." in props["iters"]["description"]
    assert "1024-path budget" in props["paths"]["description"]


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("segment", {**SEG, "bbox_2d": [1, 2, 3]}, "bbox_2d: expected 4 numbers in 0..1000, got 3"),
        ("segment", {**SEG, "bbox_2d": [1, 2, 3, 1200]}, "bbox_2d[3]: expected a number in 0..1000, got 1200"),
        ("segment", {**SEG, "bbox_2d": [1, 2, 3, True]}, "bbox_2d[3]: expected a number in 0..1000, got true"),
        ("segment", {**SEG, "bbox_2d": [1, 2, 3, "4"]}, 'bbox_2d[3]: expected a number in 0..1000, got string "4"'),
        ("segment", {**SEG, "bbox_2d": "1,2,3,4"}, "bbox_2d: expected 4 numbers in 0..1000"),
        ("segment", {**SEG, "target": "  "}, "target: expected a non-empty string"),
        ("segment", {**SEG, "keywords": []}, "keywords: expected a list of 1..8 non-empty strings, got 0"),
        ("segment", {**SEG, "keywords": None}, "keywords: expected a list of 1..8 non-empty strings, got null"),
        ("pad_canvas", {"mask_id": "m1", "margin": 64.5}, "margin: expected an integer in 8..512, got 64.5"),
        ("pad_canvas", {"mask_id": "m1", "margin": True}, "margin: expected an integer in 8..512, got true"),
        ("vectorize", {"layer_id": "l1", "iters": float("nan")}, "iters: expected an integer in 0..5000, got nan"),
        ("finish", None, 'arguments must be a JSON object like {"reason": ...}, got null'),
        ("finish", ["r"], "arguments must be a JSON object"),
        ("click", {}, "unknown tool 'click'; available tools: segment, pad_canvas, inpaint, vectorize, finish"),
    ],
)
def test_errors_name_the_argument_and_what_to_send(name: str, args: object, expected: str):
    _, errors = toolset().validate(name, args)
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_integral_floats_are_integers_and_several_errors_are_all_reported():
    value, errors = toolset().validate("vectorize", {"layer_id": "l1", "paths": 64.0})
    assert errors == [] and value.paths == 64 and isinstance(value.paths, int)
    _, errors = toolset().validate("inpaint", {"mask_id": "", "method": "x", "extra": 1})
    assert len(errors) == 4  # mask_id empty, layer_name missing, method not offered, extra unknown
