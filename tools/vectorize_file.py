"""Vectorize one image file: the core that ``amodal-agent vectorize`` and Python callers share.

Loading (``tools.image.load_layer``) checks everything a user can get wrong before any work starts;
the result is written in the layered SVG's form, one layer, so it can be edited like a run's result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .atomic import write_bytes_atomic
from .image import encode_png, load_layer
from .svg import SvgDocument, SvgLayer, layer_id, write_svg
from .vectorize.alv import Progress, VectorizeResult, fit_layer
from .vectorize.options import VectorizeOptions
from .vectorize.render import unpremultiply


def vectorize_file(
    image: str | Path,
    mask: str | Path | None = None,
    options: VectorizeOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> VectorizeResult:
    opts = (options or VectorizeOptions()).validate()
    target, layer_mask = load_layer(image, mask)
    return fit_layer(target, layer_mask, opts, on_progress)


def result_document(result: VectorizeResult, label: str = "layer") -> SvgDocument:
    return SvgDocument(result.width, result.height, [SvgLayer(layer_id(0, label), label, result.pathset())])


def write_preview(result: VectorizeResult, path: str | Path) -> Path:
    """PNG of what our renderer makes of the result (straight RGBA)."""
    with torch.no_grad():
        img = result.pathset().render(result.height, result.width).image
    return write_bytes_atomic(path, encode_png(unpremultiply(img).clamp(0, 1).numpy()))


def write_result(result: VectorizeResult, path: str | Path, label: str = "layer") -> Path:
    return write_svg(result_document(result, label), path)
