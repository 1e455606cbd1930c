"""The tools the model calls, run against the current run: arguments in, compact JSON out.

Each tool reads its inputs from the artifact store by id, writes what it makes back as new
artifacts, and returns (result for the model, state updates, preview image id or None). A tool
error is a result too (``{"error": ...}``): it goes back to the model, which decides the retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch

from tools.inpaint import choose_inpainter, dilate
from tools.pad_canvas import pad_and_outpaint, pad_sides
from tools.segment import SEGMENTERS, box_from_relative, mask_stats, overlay
from tools.vectorize.alv import fit_layer
from tools.vectorize.options import VectorizeOptions

from .context import RunContext
from .state import AgentState, Layer

MIN_LAYER_PATHS = 8


class ToolError(Exception):
    """A failure the model should read and react to."""


@dataclass
class ToolOutcome:
    result: dict
    updates: dict = field(default_factory=dict)
    preview: str | None = None  # artifact id of an image to show the model
    preview_caption: str = ""


def rgba_premultiplied(rgba: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(rgba.astype(np.float32) / 255)
    return torch.cat([t[..., :3] * t[..., 3:], t[..., 3:]], -1)


def layer_budget(ctx: RunContext, state: AgentState, weights: dict[str, np.ndarray] | None = None) -> dict[str, int]:
    """The paper's rule: the whole image's path budget shared among layers in proportion to area.

    A layer's area is its (amodal) mask, the background its whole canvas; with ``weights`` (the
    visibility weights finalize fits with) the area is weighted the same way, so paths are not spent
    on what layers in front hide."""
    canvas = state["canvas"]
    areas = {}
    for key, layer_id in [("background", canvas["residual_id"])] + [(x["layer_id"], x["layer_id"])
                                                                     for x in state.get("layers", [])]:
        alpha = ctx.store.load(layer_id, "RGBA")[..., 3].astype(np.float32) / 255
        if key == "background":
            alpha = np.ones_like(alpha)
        areas[key] = float((alpha * (weights[key] if weights and key in weights else 1.0)).sum())
    total = sum(areas.values()) or 1.0
    return {k: max(MIN_LAYER_PATHS, round(ctx.options.paths * a / total)) for k, a in areas.items()}


def save_vector(ctx: RunContext, key: str, points: torch.Tensor, colors: torch.Tensor) -> str:
    """Vectorized paths go to a JSON sidecar (state keeps the file name)."""
    from tools.atomic import write_text_atomic

    name = f"vectors/{key[:16]}.json"
    write_text_atomic(ctx.run_dir / name, json.dumps({"points": points.tolist(), "colors": colors.tolist()}))
    return name


def load_vector(ctx: RunContext, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, 3K, 2) points and (P, 4) colours saved by ``save_vector``."""
    data = json.loads((ctx.run_dir / name).read_text())
    pts = torch.tensor(data["points"], dtype=torch.float32).reshape(len(data["colors"]), -1, 2)
    return pts, torch.tensor(data["colors"], dtype=torch.float32)


def layer_steps(ctx: RunContext) -> int:
    """Optimizer steps per layer: the count a single vectorization of the whole budget would take.
    Small layers are cheap per step, and a few hundred more steps buy them ~1.5 dB."""
    return ctx.options.iters if ctx.options.iters is not None else 300 + ctx.options.paths // 2


def fit(ctx: RunContext, rgba: np.ndarray, paths: int, iters: int | None, label: str, opaque: bool = False,
        weight: np.ndarray | None = None):
    """ALV on one layer with the run's settings, with live progress."""
    target = rgba_premultiplied(rgba)
    mask = None if opaque else target[..., 3]
    opts = VectorizeOptions(paths=paths, iters=iters if iters is not None else layer_steps(ctx),
                            seed=ctx.options.seed, device=ctx.options.device)
    w = None if weight is None else torch.from_numpy(weight.astype(np.float32))
    with ctx.view.optimizer(label, opts.steps) as report, RunContext.timer(ctx, f"vectorize:{label}"):
        return fit_layer(target, mask, opts, report, weight=w)


class Toolbox:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def run(self, name: str, args: dict, state: AgentState) -> ToolOutcome:
        method = getattr(self, f"tool_{name}", None)
        if method is None:
            raise ToolError(f"unknown tool {name}")
        with RunContext.timer(self.ctx, f"tool:{name}"):
            try:
                return method(state, **args)
            except ValueError as exc:  # a backend refusing its input: the model can react to it
                raise ToolError(str(exc)) from None

    # ------------------------------------------------------------------------------------ tools
    def _residual(self, state: AgentState) -> np.ndarray:
        return self.ctx.store.load(state["canvas"]["residual_id"], "RGB")

    def _mask(self, state: AgentState, mask_id: str) -> tuple[np.ndarray, dict]:
        info = state.get("masks", {}).get(mask_id)
        if info is None:
            raise ToolError(f"unknown mask_id {mask_id!r}: use a mask_id returned by segment or pad_canvas")
        return self.ctx.store.load(mask_id, "L") > 127, info

    def tool_segment(self, state: AgentState, target: str, keywords: list[str] | None = None,
                     bbox_2d: list[float] | None = None) -> ToolOutcome:
        residual = self._residual(state)
        h, w = residual.shape[:2]
        if bbox_2d is None:
            raise ToolError("bbox_2d is required: no open-vocabulary detector is installed in this build, "
                            "so give the object's box as [x1, y1, x2, y2] in 0..1000")
        box = box_from_relative(bbox_2d, w, h)  # a ValueError reaches the model through ``run``
        backend = SEGMENTERS["grabcut"]
        self.ctx.backends["segment"].add(backend.name)
        seg = backend().segment(residual, box, seed=self.ctx.options.seed)
        mask = seg.mask
        mask_id = self.ctx.artifact("act", (mask * 255).astype(np.uint8), "mask")
        stats = mask_stats(mask)
        preview = self.ctx.artifact("act", overlay(residual, mask), "mask_preview")
        result = {"mask_id": mask_id, "area_fraction": stats["area_fraction"], "touches": stats["touches"],
                  "bbox_2d": [round(v * 1000 / s) for v, s in zip(stats["bbox"], (w, h, w, h), strict=True)],
                  "backend": backend.name}
        if seg.note:
            result["note"] = seg.note
            self.ctx.note("act", f"segment: {seg.note}")
        if stats["area_fraction"] > 0.85:
            result["warning"] = "the mask covers most of the image: is this the background?"
        masks = dict(state.get("masks", {}))
        masks[mask_id] = {"canvas_id": state["canvas"]["residual_id"], "target": target, "stats": stats}
        caption = f"Mask of '{target}' (outlined; outside dimmed). Touches: {', '.join(stats['touches']) or 'none'}."
        return ToolOutcome(result, {"masks": masks}, preview, caption)

    def tool_pad_canvas(self, state: AgentState, mask_id: str, margin: int = 64) -> ToolOutcome:
        mask, info = self._mask(state, mask_id)
        canvas = state["canvas"]
        if info["canvas_id"] != canvas["residual_id"]:
            raise ToolError("that mask was made on an earlier canvas; call segment again first")
        touches = info["stats"]["touches"]
        if not touches:
            raise ToolError("the mask does not touch the frame: nothing to pad")
        sides = pad_sides(touches, int(margin))
        res = pad_and_outpaint(self._residual(state), mask, sides, seed=self.ctx.options.seed)
        self.ctx.backends["pad_canvas"].add("outpaint")
        residual_id = self.ctx.artifact("act", res.image, "residual")
        new_mask_id = self.ctx.artifact("act", (res.mask * 255).astype(np.uint8), "mask")
        offset = [canvas["offset"][0] + res.offset[0], canvas["offset"][1] + res.offset[1]]
        new_canvas = dict(canvas, residual_id=residual_id, width=res.size[0], height=res.size[1], offset=offset)
        masks = dict(state.get("masks", {}))
        masks[new_mask_id] = {"canvas_id": residual_id, "target": info["target"], "stats": mask_stats(res.mask)}
        preview = self.ctx.artifact("act", overlay(res.image, res.mask), "mask_preview")
        result = {"mask_id": new_mask_id, "canvas_id": residual_id, "padding": sides,
                  "size": [res.size[0], res.size[1]]}
        return ToolOutcome(result, {"canvas": new_canvas, "masks": masks}, preview,
                           "The padded canvas (new border outpainted) with the mask re-made on it.")

    def tool_inpaint(self, state: AgentState, mask_id: str, layer_name: str, method: str = "auto",
                     prompt: str | None = None) -> ToolOutcome:
        mask, info = self._mask(state, mask_id)
        canvas = dict(state["canvas"])
        layers = list(state.get("layers", []))
        if info["canvas_id"] != canvas["residual_id"]:
            # calling again on the last layer's mask redoes that fill (e.g. LaMa, then FLUX)
            if layers and layers[-1]["mask_id"] == mask_id and layers[-1]["residual_after"] == canvas["residual_id"]:
                canvas["residual_id"] = layers.pop()["residual_before"]
            else:
                raise ToolError("that mask was made on an earlier canvas; call segment again first")
        if not mask.any():
            raise ToolError("the mask is empty")
        backend, note = choose_inpainter(method)
        if note:
            self.ctx.note("act", f"inpaint: {note}")
        self.ctx.backends["inpaint"].add(backend.name)
        residual = self.ctx.store.load(canvas["residual_id"], "RGB")
        # the hole is the mask grown a little so the object's anti-aliased rim is not smeared into the
        # fill; the layer takes the same pixels, so layer over filled residual gives back the image
        hole = dilate(mask, 2)
        filled = backend().inpaint(residual, hole, seed=self.ctx.options.seed)
        layer_rgba = np.dstack([residual, (hole * 255).astype(np.uint8)])
        layer_id = self.ctx.artifact("act", layer_rgba, "layer")
        residual_id = self.ctx.artifact("act", filled, "residual")
        layer: Layer = {"name": layer_name.strip() or f"object {len(layers) + 1}", "layer_id": layer_id,
                        "mask_id": mask_id, "residual_before": canvas["residual_id"], "residual_after": residual_id,
                        "method": backend.name, "offset": list(canvas["offset"]),
                        "size": [canvas["width"], canvas["height"]]}
        layers.append(layer)
        canvas["residual_id"] = residual_id
        result = {"layer_id": layer_id, "residual_id": residual_id, "method": backend.name,
                  "layers": len(layers)}
        if note:
            result["note"] = note
        return ToolOutcome(result, {"layers": layers, "canvas": canvas}, residual_id,
                           f"The residual after removing '{layer['name']}' and filling the hole ({backend.name}).")

    def tool_vectorize(self, state: AgentState, layer_id: str, paths: int | None = None,
                       iters: int | None = None) -> ToolOutcome:
        layers = [dict(layer) for layer in state.get("layers", [])]
        idx = next((i for i, layer in enumerate(layers) if layer["layer_id"] == layer_id), None)
        if idx is None:
            raise ToolError(f"unknown layer_id {layer_id!r}: use a layer_id returned by inpaint")
        budget = paths if paths is not None else layer_budget(self.ctx, state)[layer_id]
        rgba = self.ctx.store.load(layer_id, "RGBA")
        res = fit(self.ctx, rgba, int(budget), iters, layers[idx]["name"])
        psnr = round(res.psnr, 2)
        file = save_vector(self.ctx, layer_id, res.points, res.colors)
        layers[idx]["vector"] = {"file": file, "paths": res.num_paths, "psnr": psnr}
        self.ctx.backends["vectorize"].add("alv")
        return ToolOutcome({"layer_id": layer_id, "paths": res.num_paths, "psnr": psnr}, {"layers": layers})

    def tool_finish(self, state: AgentState, reason: str) -> ToolOutcome:
        return ToolOutcome({"ok": True}, {"status": "finished", "reason": f"model finished: {reason}"})
