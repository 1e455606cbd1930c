"""The tools the model calls, as typed functions over the run: declared arguments in, a declared reply out.

Each tool reads its inputs from the artifact store by id, writes what it makes back as new
artifacts, and returns an ``Outcome``: the reply for the model, the graph-state updates, and
optionally an image to show the model next. The pixel work is in ``tools`` (segment, pad_canvas,
inpaint, vectorize); this module only wires it to the run. A failure is a reply too
(``{"error": ...}``, from ``call``): it goes back to the model, which decides the retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np
import torch

from tools.amodal import cut
from tools.detect import Box, choose_detector
from tools.inpaint import OUTPAINT_ORDER, choose_inpainter
from tools.pad_canvas import default_margin, pad_and_outpaint, pad_sides
from tools.segment import box_from_relative, choose_segmenter, mask_stats, overlay
from tools.vectorize.stack import StackLayer, fit_stack_layer, layer_areas, share_budget

from .context import RunContext
from .state import AgentState, Layer
from .toolspec import (
    FinishArgs,
    FinishReply,
    InpaintArgs,
    InpaintReply,
    PadCanvasArgs,
    PadCanvasReply,
    Reply,
    SegmentArgs,
    SegmentReply,
    VectorizeArgs,
    VectorizeReply,
)

R = TypeVar("R", bound=Reply)

# a mask whose part outside the earlier layers is smaller than either of these is refused by inpaint: what
# lies inside them is their filled hole (an inpainter's copy of nearby things), and cutting it would
# make an empty layer and leave the residual as it was
MIN_NEW_PIXELS = 8
MIN_NEW_SHARE = 0.05


class ToolError(Exception):
    """A failure the model should read and react to."""


@dataclass
class Outcome(Generic[R]):
    reply: R
    updates: dict = field(default_factory=dict)
    preview: str | None = None  # artifact id of an image to show the model
    preview_caption: str = ""


def _residual(run: RunContext, state: AgentState) -> np.ndarray:
    return run.store.load(state["canvas"]["residual_id"], "RGB")


def _mask(run: RunContext, state: AgentState, mask_id: str) -> tuple[np.ndarray, dict]:
    info = state.get("masks", {}).get(mask_id)
    if info is None:
        raise ToolError(f"unknown mask_id {mask_id!r}: use a mask_id returned by segment or pad_canvas")
    return run.store.load(mask_id, "L") > 127, info


def _loaded(run: RunContext, backend: object) -> None:
    """A model backend's load time goes into the manifest's timings, once per process."""
    seconds = getattr(backend, "load_seconds", 0.0)
    if seconds:
        run.timings[f"load:{backend.name}"] += seconds


def _described(inpainter: object) -> str:
    """The inpainter's name, and what it started from and whether it was offloaded, when it says."""
    extra = [f"from {inpainter.started_from}"] if getattr(inpainter, "started_from", None) else []
    extra += ["CPU offload"] if getattr(inpainter, "offloaded", False) else []
    return f"{inpainter.name} ({', '.join(extra)})" if extra else inpainter.name


def _detect(run: RunContext, image: np.ndarray, keywords: list[str], hint: Box | None) -> tuple[Box, str | None]:
    """The box to cut the mask from: the detection the model meant when a detector works here and it
    gave keywords, else its own box; and how it was chosen, for the result."""
    detector, skipped = choose_detector()
    if skipped:
        run.note("act", f"detect: {skipped}")
    if detector is None or not keywords:
        if hint is None:
            raise ToolError("bbox_2d is required: give the object's box as [x1, y1, x2, y2] in 0..1000")
        return hint, None
    instance = detector(device=run.options.device)
    found, how = instance.detect(image, keywords, hint)
    _loaded(run, instance)
    run.backends["detect"].add(detector.name)
    if found is not None:
        return found, f"{detector.name} {how}"
    if hint is None:
        raise ToolError(f"{detector.name} {how}: call segment with bbox_2d, or other keywords")
    return hint, f"{detector.name} {how}; used your bbox_2d"


def segment(run: RunContext, state: AgentState, args: SegmentArgs) -> Outcome[SegmentReply]:
    residual = _residual(run, state)
    h, w = residual.shape[:2]
    hint = box_from_relative(args.bbox_2d, w, h) if args.bbox_2d is not None else None
    keywords = list(args.keywords or [])
    try:
        backend, skipped = choose_segmenter(run.options.segmenter)
    except ValueError as exc:
        raise ToolError(f"{exc} (run `amodal-agent doctor`)") from exc
    if skipped:
        run.note("act", f"segment: {skipped}")
    if backend.grounded:  # it finds the object from the keywords itself
        if hint is None and not keywords:
            raise ToolError("give keywords or bbox_2d")
        box, box_from = hint, None
    else:
        box, box_from = _detect(run, residual, keywords, hint)
    run.backends["segment"].add(backend.name)
    segmenter = backend(device=run.options.device)
    points, exclude = ([(x * w / 1000, y * h / 1000) for x, y in given or ()]
                       for given in (args.points, args.exclude_points))
    seg = segmenter.segment(residual, box, seed=run.options.seed, keywords=keywords, points=points, exclude=exclude)
    _loaded(run, segmenter)
    box_from = seg.found or box_from
    mask_id = run.artifact("act", (seg.mask * 255).astype(np.uint8), "mask")
    stats = mask_stats(seg.mask)
    preview = run.artifact("act", overlay(residual, seg.mask), "mask_preview")
    reply = SegmentReply(mask_id=mask_id, area_fraction=stats["area_fraction"], touches=stats["touches"],
                         bbox_2d=[round(v * 1000 / s) for v, s in zip(stats["bbox"], (w, h, w, h), strict=True)],
                         backend=backend.name, box_from=box_from, note=seg.note, guessed=seg.guessed or None,
                         warning="the mask covers most of the image: is this the background?"
                         if stats["area_fraction"] > 0.85 else None)
    if seg.note:
        run.note("act", f"segment: {seg.note}")
    masks = dict(state.get("masks", {}))
    masks[mask_id] = {"canvas_id": state["canvas"]["residual_id"], "target": args.target, "stats": stats}
    caption = f"Mask of '{args.target}' (outlined; outside dimmed). Touches: {', '.join(stats['touches']) or 'none'}."
    return Outcome(reply, {"masks": masks}, preview, caption)


def pad_canvas(run: RunContext, state: AgentState, args: PadCanvasArgs) -> Outcome[PadCanvasReply]:
    mask, info = _mask(run, state, args.mask_id)
    canvas = state["canvas"]
    if info["canvas_id"] != canvas["residual_id"]:
        raise ToolError("that mask was made on an earlier canvas; call segment again first")
    touches = info["stats"]["touches"]
    if not touches:
        raise ToolError("the mask does not touch the frame: nothing to pad")
    sides = pad_sides(touches, args.margin if args.margin is not None else default_margin(mask))
    backend, note = choose_inpainter("auto", OUTPAINT_ORDER)
    if note:
        run.note("act", f"pad_canvas: {note}")
    inpainter = backend(device=run.options.device)
    res = pad_and_outpaint(_residual(run, state), mask, sides, seed=run.options.seed, inpainter=inpainter)
    _loaded(run, inpainter)
    run.backends["pad_canvas"].add(f"outpaint ({_described(inpainter)})")
    residual_id = run.artifact("act", res.image, "residual")
    new_mask_id = run.artifact("act", (res.mask * 255).astype(np.uint8), "mask")
    offset = [canvas["offset"][0] + res.offset[0], canvas["offset"][1] + res.offset[1]]
    new_canvas = dict(canvas, residual_id=residual_id, width=res.size[0], height=res.size[1], offset=offset)
    masks = dict(state.get("masks", {}))
    masks[new_mask_id] = {"canvas_id": residual_id, "target": info["target"], "stats": mask_stats(res.mask)}
    preview = run.artifact("act", overlay(res.image, res.mask), "mask_preview")
    reply = PadCanvasReply(mask_id=new_mask_id, canvas_id=residual_id, padding=sides, size=list(res.size))
    return Outcome(reply, {"canvas": new_canvas, "masks": masks}, preview,
                   "The padded canvas (new border outpainted) with the mask re-made on it.")


def inpaint(run: RunContext, state: AgentState, args: InpaintArgs) -> Outcome[InpaintReply]:
    mask, info = _mask(run, state, args.mask_id)
    canvas = dict(state["canvas"])
    layers = list(state.get("layers", []))
    if info["canvas_id"] != canvas["residual_id"]:
        # calling again on the last layer's mask redoes that fill (with another method)
        if layers and layers[-1]["mask_id"] == args.mask_id and layers[-1]["residual_after"] == canvas["residual_id"]:
            canvas["residual_id"] = layers.pop()["residual_before"]
        else:
            raise ToolError("that mask was made on an earlier canvas; call segment again first")
    if not mask.any():
        raise ToolError("the mask is empty")
    hide = occluded(run, canvas, layers)
    new = int((mask & (hide == 0)).sum())
    if new < max(MIN_NEW_PIXELS, MIN_NEW_SHARE * int(mask.sum())):
        raise ToolError(f"only {new} of the mask's {int(mask.sum())} pixels are outside the layers already peeled: "
                        "the rest is their filled hole, not something the photo shows; segment another object, "
                        "or finish")
    backend, note = choose_inpainter(args.method)
    if backend.takes_prompt and not args.prompt:
        raise ToolError(f"method {backend.name} paints what prompt says: call inpaint again with prompt "
                        "(what is behind the object)")
    if args.prompt and not backend.takes_prompt:
        note = "; ".join(filter(None, [note, f"{backend.name} takes no prompt; it was not used"]))
    if note:
        run.note("act", f"inpaint: {note}")
    residual = run.store.load(canvas["residual_id"], "RGB")
    # the object continues where earlier layers or the frame hide it; its rim is matted against the fill
    inpainter = backend(device=run.options.device)
    texture = inpainter
    if backend.takes_prompt:  # the object's own hidden part is continued from itself, not from the prompt
        texture = choose_inpainter("auto")[0](device=run.options.device)
    piece = cut(residual, mask, hide, inpainter, seed=run.options.seed,
                prompt=args.prompt or "", texture=texture)
    for used in {inpainter, texture}:
        _loaded(run, used)
    run.backends["inpaint"].add(_described(inpainter))
    layer_id = run.artifact("act", piece.layer, "layer")
    residual_id = run.artifact("act", piece.residual, "residual")
    layer: Layer = {"name": args.layer_name or f"object {len(layers) + 1}", "layer_id": layer_id,
                    "mask_id": args.mask_id, "residual_before": canvas["residual_id"], "residual_after": residual_id,
                    "method": backend.name, "offset": list(canvas["offset"]),
                    "size": [canvas["width"], canvas["height"]]}
    layers.append(layer)
    canvas["residual_id"] = residual_id
    reply = InpaintReply(layer_id=layer_id, residual_id=residual_id, method=_described(inpainter), layers=len(layers),
                         note=note)
    return Outcome(reply, {"layers": layers, "canvas": canvas}, residual_id,
                   f"The residual after removing '{layer['name']}' and filling the hole ({backend.name}).")


def occluded(run: RunContext, canvas: dict, layers: list[Layer]) -> np.ndarray:
    """How much of each canvas pixel is known to be hidden, 0..1: the cover of every earlier (front)
    layer, and all of the canvas ``pad_canvas`` added beyond the photo's frame. Where it is partial
    (a front layer's soft rim) the residual still shows through."""
    h, w = canvas["height"], canvas["width"]
    clear = np.zeros((h, w), np.float64)  # how much of each pixel still shows
    (fx, fy), (fw, fh) = canvas["offset"], canvas["frame"]
    clear[fy:fy + fh, fx:fx + fw] = 1
    for layer in layers:
        alpha = run.store.load(layer["layer_id"], "RGBA")[..., 3] / 255
        dx, dy = canvas["offset"][0] - layer["offset"][0], canvas["offset"][1] - layer["offset"][1]
        lh, lw = alpha.shape
        clear[dy:dy + lh, dx:dx + lw] *= 1 - alpha
    return 1 - clear


def vectorize(run: RunContext, state: AgentState, args: VectorizeArgs) -> Outcome[VectorizeReply]:
    layers = [dict(layer) for layer in state.get("layers", [])]
    idx = next((i for i, layer in enumerate(layers) if layer["layer_id"] == args.layer_id), None)
    if idx is None:
        raise ToolError(f"unknown layer_id {args.layer_id!r}: use a layer_id returned by inpaint")
    rgba = run.store.load(args.layer_id, "RGBA")
    opts = run.options.vectorize if args.iters is None else replace(run.options.vectorize, iters=args.iters)
    budget = args.paths
    if budget is None:  # the layer's share by area, as finalize would give it (background: its whole canvas)
        canvas = state["canvas"]
        background = StackLayer(np.zeros((canvas["height"], canvas["width"], 4), np.uint8), (0, 0), opaque=True)
        others = [StackLayer(run.store.load(x["layer_id"], "RGBA"), (0, 0)) for x in layers]
        budget = share_budget(layer_areas([background, *others]), opts.paths)[1 + idx]
    name = layers[idx]["name"]
    with run.view.optimizer(name, opts.steps) as report, run.timer(f"vectorize:{name}"):
        res = fit_stack_layer(StackLayer(rgba, (0, 0)), budget, opts, on_progress=report)
    psnr = round(res.psnr, 2)
    layers[idx]["vector"] = {"file": run.write_vector(args.layer_id, res.points, res.colors), "paths": res.num_paths,
                             "psnr": psnr}
    run.backends["vectorize"].add("alv")
    return Outcome(VectorizeReply(layer_id=args.layer_id, paths=res.num_paths, psnr=psnr), {"layers": layers})


def finish(run: RunContext, state: AgentState, args: FinishArgs) -> Outcome[FinishReply]:
    return Outcome(FinishReply(ok=True), {"status": "finished", "reason": f"model finished: {args.reason}"})


IMPLEMENTATIONS: dict[str, Callable[[RunContext, AgentState, object], Outcome]] = {
    "segment": segment, "pad_canvas": pad_canvas, "inpaint": inpaint, "vectorize": vectorize, "finish": finish,
}


def call(run: RunContext, state: AgentState, name: str, raw_args: object) -> Outcome | dict:
    """Validate and run one call: the Outcome, or ``{"error": ...}`` for the model to read.

    A backend out of GPU memory runs the call again on the CPU, and the user is told. A backend that
    breaks in any other way is a failed call, not a dead run: the model reads what broke and decides,
    and repeated failures end the run cleanly (``tool_failures``)."""
    args, problems = run.tools.validate(name, raw_args)
    if problems:
        return {"error": ("invalid arguments: " if name in run.tools.specs else "") + "; ".join(problems)}
    with run.timer(f"tool:{name}"):
        try:
            try:
                return IMPLEMENTATIONS[name](run, state, args)
            except torch.OutOfMemoryError as exc:
                if run.options.device == "cpu":
                    raise
                run.note("act", f"{name}: out of GPU memory ({_first_line(exc)}); ran it again on the CPU")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                with run.on_device("cpu"):
                    return IMPLEMENTATIONS[name](run, state, args)
        except (ToolError, ValueError) as exc:  # a backend refusing its input: the model can react to it
            return {"error": str(exc)}
        except Exception as exc:
            message = f"{name} failed in its backend: {type(exc).__name__}: {_first_line(exc)}"
            run.note("act", message)
            return {"error": message}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
