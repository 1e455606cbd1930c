"""The graceful last step: vectorize what is left, write the layered SVG and the raster layers.

Layers are stacked back to front: the final residual is the background (``00``), then the peeled
objects in reverse peel order, so the first object peeled (the front-most) ends on top. Each layer
keeps its full geometry: layers cut on a padded canvas are moved into the original frame's
coordinates, and what lies outside the frame stays in the file, clipped by the root viewBox.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from tools.atomic import write_bytes_atomic
from tools.svg import SvgDocument, SvgLayer, layer_id, slugify, write_svg
from tools.vectorize.pathset import PathSet

from .context import RunContext
from .state import AgentState
from .toolbox import fit, layer_budget, load_vector, save_vector


def stacked_layers(state: AgentState) -> list[dict]:
    """Back to front: background, then peeled objects from the last peeled to the first."""
    canvas = state["canvas"]
    background = {"name": "background", "layer_id": canvas["residual_id"], "offset": canvas["offset"],
                  "size": [canvas["width"], canvas["height"]], "background": True}
    return [background, *reversed(state.get("layers", []))]


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_layer_pngs(ctx: RunContext, state: AgentState) -> list[str]:
    """``layers/NN-slug.png`` as RGBA at the final canvas's size and position (also used when a run
    fails, for the layers finished so far)."""
    canvas = state["canvas"]
    names = []
    for nn, layer in enumerate(stacked_layers(state)):
        img, dx, dy = _placed(ctx, layer, canvas)
        full = np.zeros((canvas["height"], canvas["width"], 4), np.uint8)
        h, w = img.shape[:2]
        full[dy : dy + h, dx : dx + w] = img
        name = f"layers/{nn:02d}-{slugify(layer['name'])}.png"
        write_bytes_atomic(ctx.run_dir / name, _png(full))
        names.append(name)
    return names


def _placed(ctx: RunContext, layer: dict, canvas: dict) -> tuple[np.ndarray, int, int]:
    """The layer's RGBA and where its canvas sits on the final canvas (dx, dy)."""
    img = ctx.store.load(layer["layer_id"], "RGBA")
    return img, canvas["offset"][0] - layer["offset"][0], canvas["offset"][1] - layer["offset"][1]


def visibility_weights(ctx: RunContext, stack: list[dict], canvas: dict, hidden: float) -> list[np.ndarray]:
    """Per layer, on its own canvas: 1 where nothing in front covers it, ``hidden`` under the layers
    in front. The hidden parts are still fitted (the layer stays complete), just with less weight."""
    cover = np.zeros((canvas["height"], canvas["width"]), np.float32)
    weights: list[np.ndarray] = [np.empty(0)] * len(stack)
    for i in range(len(stack) - 1, -1, -1):  # front to back
        img, dx, dy = _placed(ctx, stack[i], canvas)
        h, w = img.shape[:2]
        weights[i] = 1 - (1 - hidden) * cover[dy : dy + h, dx : dx + w]
        a = img[..., 3].astype(np.float32) / 255
        cover[dy : dy + h, dx : dx + w] = 1 - (1 - cover[dy : dy + h, dx : dx + w]) * (1 - a)
    return weights


def finalize_run(ctx: RunContext, state: AgentState) -> dict:
    canvas = state["canvas"]
    budget = layer_budget(ctx, state)
    stack = stacked_layers(state)
    weights = visibility_weights(ctx, stack, canvas, ctx.options.hidden_weight)
    layers_out, svg_layers, updated = [], [], []
    for nn, layer in enumerate(stack):
        is_bg = layer.get("background", False)
        key = "background" if is_bg else layer["layer_id"]
        vec = layer.get("vector")
        if vec is None:
            rgba = ctx.store.load(layer["layer_id"], "RGBA")
            res = fit(ctx, rgba, budget[key], None, layer["name"], opaque=is_bg, weight=weights[nn])
            vec = {"file": save_vector(ctx, key if not is_bg else f"bg-{layer['layer_id']}", res.points, res.colors),
                   "paths": res.num_paths, "psnr": round(res.psnr, 2)}
            ctx.backends["vectorize"].add("alv")
        paths = load_vector(ctx, vec["file"])
        shift = torch.tensor(layer["offset"], dtype=paths.points.dtype)
        paths = PathSet(paths.points - shift, paths.segment_counts, paths.owner, paths.colors, paths.evenodd)
        svg_layers.append(SvgLayer(layer_id(nn, layer["name"]), layer["name"], paths))
        layers_out.append({"index": nn, "name": layer["name"], "id": layer_id(nn, layer["name"]),
                           "layer_id": layer["layer_id"], "paths": vec["paths"], "psnr": vec["psnr"],
                           "budget": budget[key], "inpaint": layer.get("method")})
        if not is_bg:
            updated.append((layer["layer_id"], vec))
    doc = SvgDocument(canvas["frame"][0], canvas["frame"][1], svg_layers)
    write_svg(doc, ctx.run_dir / "result.svg")
    pngs = write_layer_pngs(ctx, state)
    for entry, png in zip(layers_out, pngs, strict=True):
        entry["png"] = png
    ctx.outputs = {"layers": layers_out, "svg": "result.svg"}
    vectors = dict(updated)
    new_layers = [dict(layer, vector=vectors.get(layer["layer_id"], layer.get("vector")))
                  for layer in state.get("layers", [])]
    ctx.trace.emit("finalize", "decision", {"text": f"wrote result.svg with {len(svg_layers)} layers",
                                            "layers": [e["name"] for e in layers_out]})
    return {"layers": new_layers}
