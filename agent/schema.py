"""The tools the planner model sees, as OpenAI "tools" JSON schemas, and a validator for them.

Why this module exists:

* The descriptions below are the model's only documentation of the tools, so they say what each
  tool does, when to call it, what it returns and which ids to pass back (DESIGN.md section 6).
* The same schemas are sent to the endpoint and used to check the model's arguments in ``act``;
  a schema error goes back to the model as the tool's result, so the messages of
  :func:`validate_arguments` are short and say what to send instead.
* :func:`schema_hash` goes into every run's manifest, so a replay can tell whether the model saw
  the same tools.

The validator is self-written on purpose: it covers only the JSON-schema subset used here (type
object/string/integer/number/array/boolean, required, properties, additionalProperties false, enum,
minimum/maximum, minItems/maxItems, minLength, items) and phrases errors for a model, not for a
programmer. JSON has one number type, so an integer sent as ``64.0`` is accepted (see
:func:`normalize_arguments` to turn it into ``64``); a boolean is never a number.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

__all__ = ["TOOLS", "TOOL_NAMES", "normalize_arguments", "schema_hash", "tool_schema", "validate_arguments"]

_BBOX_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": (
        "Box around the object as [x1, y1, x2, y2] in Qwen3-VL grounding coordinates: relative to the "
        "current residual image, 0..1000 on each axis (0,0 = top-left, 1000,1000 = bottom-right), not "
        "pixels. x1 < x2, y1 < y2. Cover the whole visible object, a little loose rather than tight."
    ),
    "items": {"type": "number", "minimum": 0, "maximum": 1000},
    "minItems": 4,
    "maxItems": 4,
}

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "segment",
            "description": (
                "Make a mask of one object in the current residual image (the photo with the objects "
                "peeled so far removed and filled). Call it for the single front-most object that "
                "nothing else occludes. Returns {\"mask_id\", \"area\" (fraction of the image), "
                "\"touches\" (frame edges the mask touches: top/bottom/left/right), ...} and shows you "
                "a mask preview. Check the preview: if the mask leaks or misses parts, call segment "
                "again with a better bbox_2d or target. Pass mask_id to pad_canvas or inpaint."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "target": {
                        "type": "string",
                        "minLength": 1,
                        "description": (
                            "Dense description of the object: what it is, colour, material, where it is "
                            "(e.g. \"white ceramic cup with a blue rim, front left on the table\")."
                        ),
                    },
                    "keywords": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "minItems": 1,
                        "maxItems": 8,
                        "description": (
                            "1 to 8 short nouns a detector would recognise, most specific first "
                            "(e.g. [\"cup\", \"mug\"])."
                        ),
                    },
                    "bbox_2d": _BBOX_SCHEMA,
                },
                "required": ["target", "keywords"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "pad_canvas",
            "description": (
                "Grow the residual canvas on the frame edges a mask touches and outpaint there, so an "
                "object cut off by the frame can be completed as a whole layer. Call it after segment "
                "when the object is truncated by the image border (segment's \"touches\" is not empty "
                "and the object clearly continues outside). Returns {\"mask_id\" (the mask re-made on the "
                "padded canvas: use this one from now on), \"canvas_id\", \"padding\" "
                "{top, bottom, left, right in pixels}, ...}."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "mask_id": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The mask_id returned by segment.",
                    },
                    "margin": {
                        "type": "integer",
                        "minimum": 8,
                        "maximum": 512,
                        "description": (
                            "Pixels to add on each touched edge, 8..512. Omit it to let the tool choose "
                            "from the object's size."
                        ),
                    },
                },
                "required": ["mask_id"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "inpaint",
            "description": (
                "Peel the masked object off the residual as its own complete RGBA layer (hidden parts "
                "completed) and fill the hole it leaves with what is behind it. Returns {\"layer_id\", "
                "\"residual_id\" (the new residual, shown to you), \"method\" (the one used), ...}. Look at "
                "the filled residual: if the fill is wrong (smears, ghost of the object, wrong texture), "
                "call inpaint again on the same mask_id with method \"flux\" and a prompt describing only "
                "what should be visible behind the object."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "mask_id": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The mask_id from segment (or from pad_canvas if you padded).",
                    },
                    "layer_name": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Short human name of the layer, e.g. \"cup\" or \"left chair\".",
                    },
                    "method": {
                        "type": "string",
                        "enum": ["lama", "flux", "patchmatch", "auto"],
                        "description": (
                            "Fill method: \"auto\" (default: the best installed), \"lama\" (fast, good for "
                            "plain and repetitive backgrounds), \"flux\" (generative, for large holes and "
                            "structured backgrounds; give a prompt), \"patchmatch\" (classical, no model)."
                        ),
                    },
                    "prompt": {
                        "type": "string",
                        "description": (
                            "Only with method \"flux\": what is behind the object, positively phrased "
                            "(e.g. \"wooden table top with grain, continuing left to right\"). Do not name "
                            "the removed object."
                        ),
                    },
                },
                "required": ["mask_id", "layer_name"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "vectorize",
            "description": (
                "Turn one layer into closed Bezier paths (adaptive layered vectorization) and report its "
                "fidelity. Optional: layers you do not vectorize are vectorized at the end with the "
                "run's settings. Returns {\"layer_id\", \"paths\" (count), \"psnr\" (dB, higher is "
                "better), ...}."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "layer_id": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The layer_id returned by inpaint.",
                    },
                    "paths": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 4096,
                        "description": "Ceiling on the number of paths, 1..4096; omit for the run's default.",
                    },
                    "iters": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 5000,
                        "description": "Optimizer steps, 0..5000; omit for the default (300 + paths / 2).",
                    },
                },
                "required": ["layer_id"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": (
                "End the peeling: call it when only background is left (walls, sky, floor, table top, "
                "ground), or when the user's hints say to stop. What is left becomes the background "
                "layer and everything is vectorized and written."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {
                        "type": "string",
                        "minLength": 1,
                        "description": "One sentence: why you are done (e.g. \"only the wall and floor remain\").",
                    },
                },
                "required": ["reason"],
                "additionalProperties": False,
            },
        },
    },
]

TOOL_NAMES: tuple[str, ...] = tuple(t["function"]["name"] for t in TOOLS)

_BY_NAME: dict[str, dict[str, Any]] = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


def tool_schema(name: str) -> dict[str, Any]:
    """A copy of the parameters schema of one tool (KeyError for an unknown name)."""
    return copy.deepcopy(_BY_NAME[name])


def schema_hash() -> str:
    """sha256 (hex) of a canonical JSON dump of :data:`TOOLS`, for the run manifest."""
    canonical = json.dumps(TOOLS, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Validation


def _is_int(v: object) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v) and v.is_integer()


def _is_number(v: object) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _range(schema: dict[str, Any]) -> str:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        return f" in {_fmt(lo)}..{_fmt(hi)}"
    if lo is not None:
        return f" >= {_fmt(lo)}"
    if hi is not None:
        return f" <= {_fmt(hi)}"
    return ""


_TYPE_WORDS = {
    "string": ("a string", "strings"),
    "integer": ("an integer", "integers"),
    "number": ("a number", "numbers"),
    "boolean": ("true or false", "booleans"),
    "object": ("a JSON object", "objects"),
    "array": ("a list", "lists"),
}


def _describe(schema: dict[str, Any], plural: bool = False) -> str:
    """What a value must look like, in words: 'an integer in 8..512', '4 numbers in 0..1000'."""
    if "enum" in schema:
        return "one of " + "|".join(str(e) for e in schema["enum"])
    t = schema.get("type", "")
    if t == "array":
        items = schema.get("items", {})
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        inner = _describe(items, plural=True) if items else "items"
        if lo is not None and lo == hi:
            return f"{lo} {inner}"
        if lo is not None and hi is not None:
            return f"a list of {lo}..{hi} {inner}"
        if lo is not None:
            return f"a list of at least {lo} {inner}"
        if hi is not None:
            return f"a list of at most {hi} {inner}"
        return f"a list of {inner}"
    single, many = _TYPE_WORDS.get(t, ("a value", "values"))
    word = many if plural else single
    if t in ("integer", "number"):
        return word + _range(schema)
    if t == "string" and schema.get("minLength") == 1:
        return "non-empty " + word if plural else "a non-empty string"
    return word


def _show(v: object) -> str:
    """A value as the model would recognise it, shortened."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return "string " + (s if len(s) <= 40 else s[:37] + '..."')
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, float):
        return _fmt(v) if math.isfinite(v) else str(v)
    return str(v)


def _type_ok(t: str, v: object) -> bool:
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return _is_int(v)
    if t == "number":
        return _is_number(v)
    if t == "boolean":
        return isinstance(v, bool)
    return True


def _check(schema: dict[str, Any], v: object, path: str, errors: list[str]) -> None:
    t = schema.get("type")
    if t is not None and not _type_ok(t, v):
        errors.append(f"{path}: expected {_describe(schema)}, got {_show(v)}")
        return
    if "enum" in schema and v not in schema["enum"]:
        errors.append(f"{path}: expected {_describe(schema)}, got {_show(v)}")
        return
    if t in ("integer", "number"):
        assert isinstance(v, int | float)
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            errors.append(f"{path}: expected {_describe(schema)}, got {_show(v)}")
        return
    if t == "string":
        assert isinstance(v, str)
        if len(v.strip()) < schema.get("minLength", 0):
            errors.append(f"{path}: expected {_describe(schema)}, got {_show(v)}")
        return
    if t == "array":
        assert isinstance(v, list)
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if (lo is not None and len(v) < lo) or (hi is not None and len(v) > hi):
            errors.append(f"{path}: expected {_describe(schema)}, got {len(v)}")
            return
        items = schema.get("items")
        if items:
            for i, item in enumerate(v):
                _check(items, item, f"{path}[{i}]", errors)
        return
    if t == "object":
        assert isinstance(v, dict)
        _check_object(schema, v, path, errors)


def _check_object(schema: dict[str, Any], obj: dict[str, Any], path: str, errors: list[str]) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    prefix = f"{path}." if path else ""
    for key in schema.get("required", []):
        if key not in obj:
            errors.append(f"{prefix}{key}: missing required argument ({_describe(props.get(key, {}))})")
    if schema.get("additionalProperties") is False:
        extra = [k for k in obj if k not in props]
        for k in extra:
            errors.append(f"{prefix}{k}: unknown argument; allowed: {', '.join(props)}")
    for key, value in obj.items():
        if key in props:
            _check(props[key], value, f"{prefix}{key}", errors)


def validate_arguments(name: str, args: object) -> list[str]:
    """Check a tool call's arguments against its schema; [] when they are valid.

    Each message names the argument, what was expected and what came, e.g.
    ``"bbox_2d: expected 4 numbers in 0..1000, got 3"``, so it can be handed back to the model as is.
    """
    schema = _BY_NAME.get(name)
    if schema is None:
        return [f"unknown tool {name!r}; available tools: {', '.join(TOOL_NAMES)}"]
    if not isinstance(args, dict):
        kind = "null" if args is None else type(args).__name__
        kind = {"list": "a list", "str": "a string", "int": "a number", "float": "a number"}.get(kind, kind)
        return [f"arguments must be a JSON object like {{\"{next(iter(schema['properties']))}\": ...}}, got {kind}"]
    errors: list[str] = []
    _check_object(schema, args, "", errors)
    return errors


def _normalize(schema: dict[str, Any], v: Any) -> Any:
    t = schema.get("type")
    if t == "integer" and _is_int(v):
        return int(v)
    if t == "array" and isinstance(v, list) and schema.get("items"):
        return [_normalize(schema["items"], x) for x in v]
    if t == "object" and isinstance(v, dict):
        props = schema.get("properties", {})
        return {k: _normalize(props[k], x) if k in props else x for k, x in v.items()}
    return v


def normalize_arguments(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A copy of valid arguments with integral floats given for integers turned into ints (64.0 -> 64)."""
    schema = _BY_NAME.get(name)
    if schema is None:
        return dict(args)
    return _normalize(schema, args)
