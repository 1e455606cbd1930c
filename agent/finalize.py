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
from .stackfit import refine_stack
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
    stack = stacked_layers(state)
    weights = visibility_weights(ctx, stack, canvas, ctx.options.hidden_weight)
    budget = layer_budget(ctx, state, {("background" if layer.get("background") else layer["layer_id"]): w
                                       for layer, w in zip(stack, weights, strict=True)})
    fitted, layers_out = [], []
    for nn, layer in enumerate(stack):  # 1. each layer on its own
        is_bg = layer.get("background", False)
        key = "background" if is_bg else layer["layer_id"]
        vec = layer.get("vector")
        if vec is None:
            rgba = ctx.store.load(layer["layer_id"], "RGBA")
            res = fit(ctx, rgba, budget[key], None, layer["name"], opaque=is_bg, weight=weights[nn])
            vec = {"paths": res.num_paths, "psnr": round(res.psnr, 2)}
            pts, cols = res.points, res.colors
            ctx.backends["vectorize"].add("alv")
        else:
            pts, cols = load_vector(ctx, vec["file"])
        img, dx, dy = _placed(ctx, layer, canvas)
        mask = None
        if not is_bg:
            mask = np.zeros((canvas["height"], canvas["width"]), bool)
            mask[dy : dy + img.shape[0], dx : dx + img.shape[1]] = img[..., 3] > 127
        fitted.append((pts + torch.tensor([dx, dy], dtype=pts.dtype), cols, mask))  # final canvas coordinates
        layers_out.append({"index": nn, "name": layer["name"], "id": layer_id(nn, layer["name"]),
                           "layer_id": layer["layer_id"], "paths": vec["paths"], "psnr": vec["psnr"],
                           "budget": budget[key], "inpaint": layer.get("method")})
    steps = ctx.options.refine_steps
    if steps > 0:  # 2. all layers together, on what the user sees
        photo = ctx.store.load_float(canvas["input_id"], "RGB")
        with ctx.view.optimizer("stack (joint)", steps) as report, RunContext.timer(ctx, "refine_stack"):
            fitted_pairs, stats = refine_stack(
                fitted, photo, tuple(canvas["offset"]), (canvas["width"], canvas["height"]), steps,
                device=ctx.options.device,
                on_progress=(lambda s, loss: report(_Tick(s, loss, len(stack)))) if report else None)
        fitted = [(p, c, m) for (p, c), (_, _, m) in zip(fitted_pairs, fitted, strict=True)]
        ctx.outputs["stack_refine"] = stats
        ctx.trace.emit("finalize", "decision", {"text": "joint refinement of all layers", **stats})
    svg_layers, vectors = [], {}
    frame = torch.tensor(canvas["offset"], dtype=torch.float32)
    # worked at a smaller size (--size): back to the photo's pixels; paths lose nothing by scaling
    source = canvas.get("source", canvas["frame"])
    to_photo = torch.tensor([source[0] / canvas["frame"][0], source[1] / canvas["frame"][1]])
    for entry, layer, (pts, cols, _) in zip(layers_out, stack, fitted, strict=True):
        key = f"bg-{layer['layer_id']}" if layer.get("background") else layer["layer_id"]
        vectors[layer["layer_id"]] = {"file": save_vector(ctx, key, pts, cols), "paths": entry["paths"],
                                      "psnr": entry["psnr"]}
        svg_layers.append(SvgLayer(entry["id"], layer["name"], PathSet.from_uniform((pts - frame) * to_photo, cols)))
    doc = SvgDocument(source[0], source[1], svg_layers)
    write_svg(doc, ctx.run_dir / "result.svg")
    pngs = write_layer_pngs(ctx, state)
    for entry, png in zip(layers_out, pngs, strict=True):
        entry["png"] = png
    ctx.outputs.update({"layers": layers_out, "svg": "result.svg"})
    new_layers = [dict(layer, vector=vectors.get(layer["layer_id"], layer.get("vector")))
                  for layer in state.get("layers", [])]
    ctx.trace.emit("finalize", "decision", {"text": f"wrote result.svg with {len(svg_layers)} layers",
                                            "layers": [e["name"] for e in layers_out]})
    return {"layers": new_layers}


class _Tick:
    """What the progress bar reads (step, a loss-based PSNR, the path count)."""

    def __init__(self, step: int, loss: float, layers: int):
        self.step, self.psnr, self.paths = step, -10 * np.log10(max(loss, 1e-10)), layers
