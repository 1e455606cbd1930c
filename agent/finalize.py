"""The graceful last step: vectorize what is left, write the layered SVG and the raster layers.

Layers are stacked back to front: the final residual is the background (``00``), then the peeled
objects in reverse peel order, so the first object peeled (the front-most) ends on top. Each layer
keeps its full geometry: layers cut on a padded canvas are moved into the original frame's
coordinates, and what lies outside the frame stays in the file, clipped by the root viewBox.
Every layer's pixels are read once here and handed to the vectorizer (``tools.vectorize.stack``).
"""

from __future__ import annotations

import numpy as np
import torch

from tools.atomic import write_bytes_atomic
from tools.image import encode_png
from tools.svg import SvgDocument, SvgLayer, layer_id, slugify, write_svg
from tools.vectorize.pathset import PathSet
from tools.vectorize.stack import (
    StackLayer,
    fit_stack_layer,
    layer_areas,
    refine_stack,
    share_budget,
    visibility_weights,
)

from .context import RunContext
from .state import AgentState


def stacked_layers(state: AgentState) -> list[dict]:
    """Back to front: background, then peeled objects from the last peeled to the first."""
    canvas = state["canvas"]
    background = {"name": "background", "layer_id": canvas["residual_id"], "offset": canvas["offset"],
                  "size": [canvas["width"], canvas["height"]], "background": True}
    return [background, *reversed(state.get("layers", []))]


def load_stack(run: RunContext, state: AgentState) -> list[StackLayer]:
    """Each layer's RGBA, read once, and where its canvas sits on the final canvas."""
    canvas = state["canvas"]
    return [StackLayer(run.store.load(layer["layer_id"], "RGBA"),
                       (canvas["offset"][0] - layer["offset"][0], canvas["offset"][1] - layer["offset"][1]),
                       opaque=bool(layer.get("background"))) for layer in stacked_layers(state)]


def write_layer_pngs(run: RunContext, state: AgentState, stack: list[StackLayer] | None = None) -> list[str]:
    """``layers/NN-slug.png`` as RGBA at the final canvas's size and position (also used when a run
    fails, for the layers finished so far)."""
    canvas = state["canvas"]
    stack = stack if stack is not None else load_stack(run, state)
    names = []
    for nn, (layer, placed) in enumerate(zip(stacked_layers(state), stack, strict=True)):
        full = np.zeros((canvas["height"], canvas["width"], 4), np.uint8)
        (dx, dy), (h, w) = placed.offset, placed.rgba.shape[:2]
        full[dy : dy + h, dx : dx + w] = placed.rgba
        name = f"layers/{nn:02d}-{slugify(layer['name'])}.png"
        write_bytes_atomic(run.run_dir / name, encode_png(full))
        names.append(name)
    return names


def finalize_run(run: RunContext, state: AgentState) -> dict:
    canvas = state["canvas"]
    opts = run.options.vectorize
    layers, stack = stacked_layers(state), load_stack(run, state)
    size = (canvas["width"], canvas["height"])
    weights = visibility_weights(stack, size, opts.hidden_weight)
    budgets = share_budget(layer_areas(stack, weights), opts.paths)
    fitted, layers_out = [], []
    for nn, (layer, placed) in enumerate(zip(layers, stack, strict=True)):  # 1. each layer on its own
        vec = layer.get("vector")
        if vec is None:
            with run.view.optimizer(layer["name"], opts.steps) as report, run.timer(f"vectorize:{layer['name']}"):
                res = fit_stack_layer(placed, budgets[nn], opts, weights[nn], report)
            vec = {"paths": res.num_paths, "psnr": round(res.psnr, 2)}
            pts, cols = res.points, res.colors
            run.backends["vectorize"].add("alv")
        else:
            pts, cols = run.read_vector(vec["file"])
        (dx, dy), (h, w) = placed.offset, placed.rgba.shape[:2]
        raster = np.zeros((canvas["height"], canvas["width"], 4), np.uint8)
        raster[dy : dy + h, dx : dx + w] = placed.rgba
        # final canvas coordinates
        fitted.append((pts + torch.tensor([dx, dy], dtype=pts.dtype), cols, raster, placed.opaque))
        layers_out.append({"index": nn, "name": layer["name"], "id": layer_id(nn, layer["name"]),
                           "layer_id": layer["layer_id"], "paths": vec["paths"], "psnr": vec["psnr"],
                           "budget": budgets[nn], "inpaint": layer.get("method")})
    if opts.refine_steps > 0:  # 2. all layers together, on what the user sees
        photo = run.store.load_float(canvas["input_id"], "RGB")
        with run.view.optimizer("stack (joint)", opts.refine_steps) as report, run.timer("refine_stack"):
            pairs, stats = refine_stack(fitted, photo, tuple(canvas["offset"]), size, opts, on_progress=report)
        fitted = [(p, c, r, o) for (p, c), (_, _, r, o) in zip(pairs, fitted, strict=True)]
        run.outputs["stack_refine"] = stats
        run.trace.emit("finalize", "decision", {"text": "joint refinement of all layers", **stats})
    svg_layers, vectors = [], {}
    frame = torch.tensor(canvas["offset"], dtype=torch.float32)
    # worked at a smaller size (--size): back to the photo's pixels; paths lose nothing by scaling
    source = canvas.get("source", canvas["frame"])
    to_photo = torch.tensor([source[0] / canvas["frame"][0], source[1] / canvas["frame"][1]])
    for entry, layer, (pts, cols, _, _) in zip(layers_out, layers, fitted, strict=True):
        key = f"bg-{layer['layer_id']}" if layer.get("background") else layer["layer_id"]
        vectors[layer["layer_id"]] = {"file": run.write_vector(key, pts, cols), "paths": entry["paths"],
                                      "psnr": entry["psnr"]}
        svg_layers.append(SvgLayer(entry["id"], layer["name"], PathSet.from_uniform((pts - frame) * to_photo, cols)))
    write_svg(SvgDocument(source[0], source[1], svg_layers), run.run_dir / "result.svg")
    for entry, png in zip(layers_out, write_layer_pngs(run, state, stack), strict=True):
        entry["png"] = png
    run.outputs.update({"layers": layers_out, "svg": "result.svg"})
    new_layers = [dict(layer, vector=vectors.get(layer["layer_id"], layer.get("vector")))
                  for layer in state.get("layers", [])]
    run.trace.emit("finalize", "decision", {"text": f"wrote result.svg with {len(svg_layers)} layers",
                                            "layers": [e["name"] for e in layers_out]})
    return {"layers": new_layers}
