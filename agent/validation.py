"""A declared argument model as the model sees it (a plain JSON schema) and its errors as the model reads them.

The schema is pydantic's, minus what only confuses a model (titles, ``null`` branches of optional
arguments: an optional argument is one you leave out). Errors are rewritten from pydantic's
programmer-facing messages into one short line per problem that names the argument, what was
expected and what came (``"bbox_2d: expected 4 numbers in 0..1000, got 3"``), since they go back to
the model as the tool's result and it must be able to fix its call from them alone.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ValidationError


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        if "anyOf" in node:
            branches = [b for b in node["anyOf"] if b.get("type") != "null"]
            if len(branches) == 1:
                merged = {k: v for k, v in node.items() if k != "anyOf"} | branches[0]
                return _clean(merged)
        return {k: _clean(v) for k, v in node.items() if k != "title" and not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the endpoint for ``model``'s arguments."""
    schema = _clean(model.model_json_schema())
    schema.pop("description", None)  # the docstring is the tool's description, sent beside the schema
    return schema


# ------------------------------------------------------------------------------------------ words
def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _range(schema: dict[str, Any]) -> str:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        return f" in {_fmt(lo)}..{_fmt(hi)}"
    if lo is not None:
        return f" >= {_fmt(lo)}"
    return f" <= {_fmt(hi)}" if hi is not None else ""


_TYPE_WORDS = {
    "string": ("a string", "strings"), "integer": ("an integer", "integers"), "number": ("a number", "numbers"),
    "boolean": ("true or false", "booleans"), "object": ("a JSON object", "objects"), "array": ("a list", "lists"),
}


def describe(schema: dict[str, Any], plural: bool = False) -> str:
    """What a value must look like, in words: 'an integer in 8..512', '4 numbers in 0..1000'."""
    if "enum" in schema:
        return "one of " + "|".join(str(e) for e in schema["enum"])
    t = schema.get("type", "")
    if t == "array":
        items = schema.get("items", {})
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        inner = describe(items, plural=True) if items else "items"
        if lo is not None and lo == hi:
            return f"lists of {lo} {inner}" if plural else f"{lo} {inner}"
        article = "lists of" if plural else "a list of"
        if lo is not None and hi is not None:
            return f"{article} {lo}..{hi} {inner}"
        if lo is not None:
            return f"{article} at least {lo} {inner}"
        return f"{article} at most {hi} {inner}" if hi is not None else f"{article} {inner}"
    single, many = _TYPE_WORDS.get(t, ("a value", "values"))
    if t in ("integer", "number"):
        return (many if plural else single) + _range(schema)
    if t == "string" and schema.get("minLength") == 1:
        return "non-empty strings" if plural else "a non-empty string"
    return many if plural else single


def show(v: object) -> str:
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


# ------------------------------------------------------------------------------------- validation
def normalize(schema: dict[str, Any], v: Any) -> Any:
    """Integral floats sent for integers become ints (JSON has one number type: 64.0 is 64)."""
    t = schema.get("type")
    if t == "integer" and isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    if t == "array" and isinstance(v, list) and schema.get("items"):
        return [normalize(schema["items"], x) for x in v]
    if t == "object" and isinstance(v, dict):
        props = schema.get("properties", {})
        return {k: normalize(props[k], x) if k in props else x for k, x in v.items()}
    return v


def _at(schema: dict[str, Any], loc: tuple) -> dict[str, Any]:
    node = schema
    for part in loc:
        node = node.get("items", {}) if isinstance(part, int) else node.get("properties", {}).get(part, {})
    return node


def _path(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))


def _message(schema: dict[str, Any], error: dict[str, Any]) -> str:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    path, sub = _path(loc), _at(schema, loc)
    if kind == "missing":
        return f"{path}: missing required argument ({describe(sub)})"
    if kind == "extra_forbidden":
        return f"{path}: unknown argument; allowed: {', '.join(schema.get('properties', {}))}"
    if kind in ("too_short", "too_long") and isinstance(value, list):
        return f"{path}: expected {describe(sub)}, got {len(value)}"
    return f"{path}: expected {describe(sub)}, got {show(value)}"


def validate(model: type[BaseModel], args: object) -> tuple[BaseModel | None, list[str]]:
    """(the validated arguments, []) or (None, one line per problem, in argument order)."""
    schema = model_schema(model)
    if not isinstance(args, dict):
        kind = {"list": "a list", "str": "a string", "int": "a number", "float": "a number"}.get(
            type(args).__name__, "null" if args is None else type(args).__name__)
        first = next(iter(schema.get("properties", {"...": None})))
        return None, [f"arguments must be a JSON object like {{\"{first}\": ...}}, got {kind}"]
    # an explicit null is not "left out": the schema the model sees has no null type
    nulls = [f"{k}: expected {describe(schema['properties'][k])}, got null" for k, v in args.items()
             if v is None and k in schema.get("properties", {})]
    try:
        value = model.model_validate(normalize(schema, {k: v for k, v in args.items() if v is not None}))
    except ValidationError as exc:
        return None, nulls + list(dict.fromkeys(_message(schema, e) for e in exc.errors()))
    return (None, nulls) if nulls else (value, [])
