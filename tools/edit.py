"""Object-level edits of a layered SVG: the reason the output is layered at all.

Each edit works on one whole layer (an object, complete behind its occluders), so moving, scaling,
recolouring or re-stacking it never leaves a hole. The document is read with ``tools.svg`` and written
back in the contract's form; layers the edit does not touch come out byte for byte as they went in
(ids are renumbered only when the stacking order changes, since ``layer-NN`` encodes the position).

The CLI (``amodal-agent edit``) and Python callers share ``Edit``: one operation per call, so a
sequence of edits is a sequence of files a user can inspect and undo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from .svg import SvgDocument, SvgLayer, layer_id, read_svg, slugify
from .svg_paint import parse_color
from .vectorize.pathset import PathSet

OPERATIONS = ("recolor", "move", "scale", "remove", "raise", "lower", "to-front", "to-back", "replace")


@dataclass(frozen=True)
class Edit:
    """One operation on one layer. ``value`` depends on ``op``: a CSS colour (recolor), ``(dx, dy)``
    in pixels (move), a positive factor (scale), an SVG path (replace), nothing otherwise."""

    op: str
    value: object = None

    def validate(self) -> Edit:
        if self.op not in OPERATIONS:
            raise ValueError(f"unknown edit {self.op!r}; one of: {', '.join(OPERATIONS)}")
        if self.op == "recolor" and parse_color(str(self.value)) is None:
            raise ValueError("--recolor needs a colour, not 'none'")
        if self.op == "move" and not (isinstance(self.value, tuple | list) and len(self.value) == 2
                                      and all(map(_finite, self.value))):
            raise ValueError(f"--move needs two finite numbers, got {self.value}")
        if self.op == "scale" and not (_finite(self.value) and float(self.value) > 0):  # type: ignore[arg-type]
            raise ValueError(f"--scale must be a positive number, got {self.value}")
        return self


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def find_layer(doc: SvgDocument, key: str) -> int:
    """Index of the layer named by ``key``: its id, its label, its number NN, or its label's slug.

    An ambiguous or unknown key is a ValueError that lists the layers, so the user can pick one.
    """
    listing = ", ".join(f"{layer.id} ({layer.label!r})" for layer in doc.layers) or "none"
    k = key.strip()
    for match in (
        lambda i, layer: layer.id == k,
        lambda i, layer: layer.label == k,
        lambda i, layer: layer.label.lower() == k.lower(),
        lambda i, layer: k.isdigit() and int(k) == i,
        lambda i, layer: slugify(layer.label) == slugify(k),
    ):
        hits = [i for i, layer in enumerate(doc.layers) if match(i, layer)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"--layer {key!r} matches {len(hits)} layers; use an id. Layers: {listing}")
    raise ValueError(f"no layer {key!r} in the SVG. Layers: {listing}")


def _recolor(doc: SvgDocument, layer: SvgLayer, color: str) -> PathSet:
    """Shift every path's colour so the layer's visible mean colour becomes ``color``.

    A shift rather than a flat fill keeps the object's shading (its highlights and shadows are paths
    of other colours, or the two ends of a path's gradient, which shift together); the mean is
    weighted by each path's visible alpha area, so it is the colour the eye sees, not that of paths
    hidden under others.
    """
    ps = layer.paths
    target = torch.tensor(parse_color(color), dtype=ps.colors.dtype)
    if ps.num_paths == 0:
        return ps
    weights = ps.render(doc.height, doc.width, dtype=torch.float64).visible_alpha.to(ps.colors.dtype)
    if float(weights.sum()) <= 0:  # entirely outside the frame: an unweighted mean
        weights = torch.ones(ps.num_paths, dtype=ps.colors.dtype)
    own = ps.colors[:, :3] if ps.gradients is None else (ps.colors[:, :3] + ps.gradients[:, 4:7]) / 2
    mean = (own * weights[:, None]).sum(0) / weights.sum()

    def shifted(rows: Tensor, rgb: slice) -> Tensor:
        out = rows.clone()
        out[:, rgb] = (out[:, rgb] + (target - mean)).clamp(0, 1)
        return out

    grads = None if ps.gradients is None else shifted(ps.gradients, slice(4, 7))
    return replace(ps, colors=shifted(ps.colors, slice(0, 3)), gradients=grads)


def _scale(ps: PathSet, factor: float) -> PathSet:
    """Scaled about the centre of the layer's bounding box, so the object stays where it was."""
    if ps.points.shape[0] == 0:
        return ps
    centre = (ps.points.amin(0) + ps.points.amax(0)) / 2
    return ps.transformed(factor, centre * (1 - factor))


def _renumber(layers: list[SvgLayer]) -> list[SvgLayer]:
    return [replace(layer, id=layer_id(i, layer.label)) for i, layer in enumerate(layers)]


def apply_edit(doc: SvgDocument, key: str, edit: Edit) -> tuple[SvgDocument, str]:
    """The edited document and one line saying what was done."""
    edit.validate()
    i = find_layer(doc, key)
    layers = list(doc.layers)
    layer = layers[i]
    name = f"{layer.id} ({layer.label!r})"
    warnings: list[str] = []
    if edit.op == "recolor":
        layers[i] = replace(layer, paths=_recolor(doc, layer, str(edit.value)))
        what = f"recoloured {name}: its visible mean colour shifted to {edit.value}"
    elif edit.op == "move":
        dx, dy = (float(v) for v in edit.value)  # type: ignore[attr-defined]
        shift = torch.tensor([dx, dy], dtype=layer.paths.points.dtype)
        layers[i] = replace(layer, paths=layer.paths.transformed(1.0, shift))
        what = f"moved {name} by ({dx:g}, {dy:g}) px"
    elif edit.op == "scale":
        layers[i] = replace(layer, paths=_scale(layer.paths, float(edit.value)))  # type: ignore[arg-type]
        what = f"scaled {name} by {float(edit.value):g}"  # type: ignore[arg-type]
    elif edit.op == "remove":
        del layers[i]
        layers = _renumber(layers)
        what = f"removed {name}"
    elif edit.op == "replace":
        other = read_svg(Path(str(edit.value)))
        if (other.width, other.height) != (doc.width, doc.height):
            warnings.append(f"{edit.value} is {other.width}x{other.height}, this SVG {doc.width}x{doc.height}: "
                            "its paths are placed at their own pixel coordinates")
        warnings.extend(f"{edit.value}: {w}" for w in other.warnings)
        new = other.all_paths()
        layers[i] = replace(layer, paths=new.to(torch.float64))
        what = f"replaced the paths of {name} with the {new.num_paths} paths of {edit.value}"
    else:
        dest = {"raise": min(i + 1, len(layers) - 1), "lower": max(i - 1, 0),
                "to-front": len(layers) - 1, "to-back": 0}[edit.op]
        layers.insert(dest, layers.pop(i))
        layers = _renumber(layers)
        what = (f"{name} is already at the {'front' if dest == len(layers) - 1 else 'back'}" if dest == i
                else f"moved {name} to position {dest} of {len(layers)} (0 = back)")
    return SvgDocument(doc.width, doc.height, layers, [*doc.warnings, *warnings]), what
