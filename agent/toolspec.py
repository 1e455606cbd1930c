"""The tools the model calls, declared once: arguments and replies as pydantic models.

Everything the model learns about a tool comes from these declarations: the JSON schema sent to the
endpoint, the validation of its arguments, the error text it reads when they are wrong, and the
"Returns ..." line of each description (from the reply model's fields). ``build_toolset`` specialises
them at run start for this machine and run, so the model is offered only what works here: the
``inpaint`` method enum lists the installed backends, ``prompt`` exists only when a backend takes
one, ``bbox_2d`` is required while no open-vocabulary detector is installed, and the step counts
quoted are the run's. The set's hash goes into the manifest, so a replay knows whether the model
saw the same tools.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .validation import model_schema, validate

Edge = Literal["left", "top", "right", "bottom"]
Coordinate = Annotated[float, Field(ge=0, le=1000)]
Point2D = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Declaration(BaseModel):
    """Strict on purpose: JSON has one number type (64.0 for an integer is fixed before validation,
    ``validation.normalize``), but a string is never a number and a boolean never an integer."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, str_strip_whitespace=True)


class Reply(BaseModel):
    """What a tool returns to the model (JSON, ``None`` fields left out)."""

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# ---------------------------------------------------------------------------------------- segment
class SegmentArgs(Declaration):
    """Make a mask of one object in the current residual image (the photo with the objects peeled so
    far removed and filled). Call it for the single front-most object that nothing else occludes. It
    shows you a mask preview: if the mask leaks or misses parts, call segment again with a better
    bbox_2d or target. Pass mask_id to pad_canvas or inpaint."""

    target: NonEmpty = Field(description='Dense description of the object: what it is, colour, material, where it '
                                         'is (e.g. "white ceramic cup with a blue rim, front left on the table").')
    keywords: list[NonEmpty] | None = Field(
        None, min_length=1, max_length=8,
        description='1 to 8 short nouns a detector would recognise, most specific first (e.g. ["cup", "mug"]).')
    bbox_2d: list[Coordinate] | None = Field(
        None, min_length=4, max_length=4,
        description="Box around the object as [x1, y1, x2, y2] in Qwen3-VL grounding coordinates: relative to the "
                    "current residual image, 0..1000 on each axis (0,0 = top-left, 1000,1000 = bottom-right), not "
                    "pixels. x1 < x2, y1 < y2. Cover the whole visible object, a little loose rather than tight.")
    points: list[Point2D] | None = Field(
        None, min_length=1, max_length=8,
        description="Points [[x, y], ...] on the object, in the same 0..1000 coordinates as bbox_2d: on parts a "
                    "mask preview missed (e.g. a cup's body and handle when only its rim was found). The mask "
                    "takes them in.")
    exclude_points: list[Point2D] | None = Field(
        None, min_length=1, max_length=8,
        description="Points [[x, y], ...] on things that are not the object but that a mask preview took in "
                    "(e.g. the saucer under a cup). The mask leaves them out.")


class SegmentReply(Reply):
    mask_id: str = Field(description="the mask's id, for pad_canvas or inpaint")
    area_fraction: float = Field(description="share of the image the mask covers, 0..1")
    touches: list[Edge] = Field(description="frame edges the mask touches; the object may be cut off there")
    bbox_2d: list[int] = Field(description="the mask's own box, 0..1000")
    backend: str = Field(description="the segmenter that made the mask")
    box_from: str | None = Field(None, description="which box the mask was cut from, when a detector ran")
    note: str | None = Field(None, description="how the segmenter had to fall back, if it did")
    guessed: bool | None = Field(None, description="true when nothing was found from the box alone: the mask is the "
                                                   "ellipse inscribed in it, or grew from the box's core taken as the "
                                                   "object (look at it before you keep it)")
    warning: str | None = Field(None, description="a sign the mask is not one object")


# ------------------------------------------------------------------------------------- pad_canvas
class PadCanvasArgs(Declaration):
    """Grow the residual canvas on the frame edges a mask touches and outpaint there, so an object
    cut off by the frame can be completed as a whole layer. Call it after segment when the object is
    truncated by the image border (segment's touches is not empty and the object clearly continues
    outside)."""

    mask_id: NonEmpty = Field(description="The mask_id returned by segment.")
    margin: int | None = Field(None, ge=8, le=512, description="Pixels added on each touched edge (default: as far "
                               "as the object's hidden part may reach, 0.75 x the square root of the mask's area).")


class PadCanvasReply(Reply):
    mask_id: str = Field(description="the mask re-made on the padded canvas: use this one from now on")
    canvas_id: str = Field(description="the padded residual")
    padding: dict[str, int] = Field(description="pixels added per side: left, top, right, bottom")
    size: list[int] = Field(description="the padded canvas's width and height")


# ---------------------------------------------------------------------------------------- inpaint
class InpaintArgs(Declaration):
    """Peel the masked object off the residual as its own RGBA layer and fill the hole it leaves with
    what is behind it (shown to you). The layer is completed where objects you peeled earlier (and
    any padded border) hide it: its outline is continued there and painted in its own colours, and
    its edge is matted so no background travels with it. Look at the filled residual: if the fill is
    wrong (smears, a ghost of the object, wrong texture), call inpaint again on the same mask_id with
    another method. A mask that lies almost wholly inside the holes of objects peeled earlier is refused:
    those pixels are fill, not something the photo shows."""

    mask_id: NonEmpty = Field(description="The mask_id from segment (or from pad_canvas if you padded).")
    layer_name: NonEmpty = Field(description='Short human name of the layer, e.g. "cup" or "left chair".')
    method: str = Field("auto", description="Fill method.")
    prompt: NonEmpty | None = Field(
        None, description="What is behind the object, positively phrased (e.g. \"wooden table top with grain, "
                          "continuing left to right\"). Do not name the removed object.")


class InpaintReply(Reply):
    layer_id: str = Field(description="the new layer's id, for vectorize")
    residual_id: str = Field(description="the filled residual, shown to you")
    method: str = Field(description="the fill method used")
    layers: int = Field(description="layers peeled so far")
    note: str | None = Field(None, description="what method auto settled for, when not the best")


# -------------------------------------------------------------------------------------- vectorize
class VectorizeArgs(Declaration):
    """Turn one layer into closed Bezier paths (adaptive layered vectorization) now and report its
    fidelity. Optional: every layer is vectorized at the end with the run's settings anyway."""

    layer_id: NonEmpty = Field(description="The layer_id returned by inpaint.")
    paths: int | None = Field(None, ge=1, le=4096, description="Ceiling on the number of paths.")
    iters: int | None = Field(None, ge=0, le=5000, description="Optimizer steps.")


class VectorizeReply(Reply):
    layer_id: str = Field(description="the layer vectorized")
    paths: int = Field(description="paths fitted")
    psnr: float = Field(description="fidelity inside the layer in dB, higher is better")


# ----------------------------------------------------------------------------------------- finish
class FinishArgs(Declaration):
    """End the peeling: call it when only background is left (walls, sky, floor, table top, ground),
    or when the user's hints say to stop. What is left becomes the background layer and everything is
    vectorized and written."""

    reason: NonEmpty = Field(description='One sentence: why you are done (e.g. "only the wall and floor remain").')


class FinishReply(Reply):
    ok: bool = Field(description="always true")


DECLARATIONS: dict[str, tuple[type[Declaration], type[Reply]]] = {
    "segment": (SegmentArgs, SegmentReply),
    "pad_canvas": (PadCanvasArgs, PadCanvasReply),
    "inpaint": (InpaintArgs, InpaintReply),
    "vectorize": (VectorizeArgs, VectorizeReply),
    "finish": (FinishArgs, FinishReply),
}


# ------------------------------------------------------------------------------------ per machine
@dataclass(frozen=True)
class Capabilities:
    """What this machine and run can do, from the backend registries and the run's options."""

    detectors: tuple[str, ...]  # what finds objects from keywords here (a detector, or a grounded segmenter)
    inpainters: tuple[tuple[str, str, bool], ...]  # (name, what it is good for, takes a prompt)
    paths: int  # the run's whole-image path budget
    steps: int  # optimizer steps per layer in this run
    points: bool = True  # the run's segmenter reads point prompts


def specialise(base: type[Declaration], drop: tuple[str, ...] = (), doc: str | None = None,
               **fields: tuple[Any, Any]) -> type[Declaration]:
    """``base`` with fields dropped or redeclared: the model a run offers and validates against.
    Kept fields keep their declarations; the result validates into values ``base`` accepts."""
    kept = {k: (f.annotation, f) for k, f in base.model_fields.items() if k not in drop}
    kept.update(fields)
    return create_model(base.__name__, __base__=Declaration, __doc__=doc or base.__doc__, **kept)  # type: ignore[call-overload]


def _field(base: type[Declaration], name: str, description: str) -> Any:
    """One declared field with its description specialised for this run (type and limits kept)."""
    return FieldInfo.merge_field_infos(base.model_fields[name], description=description)


def run_declarations(cap: Capabilities) -> dict[str, type[Declaration]]:
    """Each tool's argument model as this run offers it."""
    out: dict[str, type[Declaration]] = {name: args for name, (args, _) in DECLARATIONS.items()}
    # a segmenter that reads no clicks is not offered them
    clicks = () if cap.points else ("points", "exclude_points")
    doc = (SegmentArgs.__doc__ or "") + (" When a box alone cannot separate the object from a neighbour of the "
                                         "same colour, call segment again with points on what the mask missed "
                                         "and exclude_points on what it wrongly took." if cap.points else "")
    if not cap.detectors:  # the same box, required
        box = copy.copy(SegmentArgs.model_fields["bbox_2d"])
        box.default = PydanticUndefined
        out["segment"] = specialise(
            SegmentArgs, drop=clicks, doc=doc + " No open-vocabulary detector is installed, so bbox_2d is "
            "required: the mask is cut from your box; keywords are recorded only.", bbox_2d=(list[Coordinate], box))
    else:
        out["segment"] = specialise(
            SegmentArgs, drop=clicks, doc=doc + f" The detector ({', '.join(cap.detectors)}) finds the object "
            "from your keywords; your bbox_2d, when given, says which detection you mean (the one it overlaps "
            "most), and is the box itself when the detector finds nothing there. Give at least one of the two.")
    names = [name for name, _, _ in cap.inpainters]
    words = "; ".join(f'"{name}": {what}' for name, what, _ in cap.inpainters)
    method = (Literal[tuple([*names, "auto"])],  # type: ignore[misc]
              _field(InpaintArgs, "method", description=f'Fill method: "auto" (default: the best installed), {words}.'))
    prompted = [name for name, _, takes in cap.inpainters if takes]
    if prompted:
        out["inpaint"] = specialise(InpaintArgs, method=method, prompt=(
            InpaintArgs.model_fields["prompt"].annotation,
            _field(InpaintArgs, "prompt", description=f"Only with method {' or '.join(prompted)}: "
                   + (InpaintArgs.model_fields["prompt"].description or ""))))
    else:
        out["inpaint"] = specialise(InpaintArgs, drop=("prompt",), method=method)
    out["vectorize"] = specialise(
        VectorizeArgs,
        paths=(int | None, _field(VectorizeArgs, "paths", description="Ceiling on the number of paths; omit for "
                                  f"the layer's share of the run's {cap.paths}-path budget (shared by area).")),
        iters=(int | None, _field(VectorizeArgs, "iters", description=f"Optimizer steps; omit for {cap.steps}.")))
    return out


def _returns(reply: type[Reply]) -> str:
    parts = [f"{name}{'' if f.is_required() else '?'} ({f.description})" for name, f in reply.model_fields.items()]
    return "Returns a JSON object: " + "; ".join(parts) + '. On failure: {"error": "..."}.'


@dataclass(frozen=True)
class ToolSpec:
    name: str
    args: type[Declaration]  # as offered in this run
    reply: type[Reply]

    def openai(self) -> dict[str, Any]:
        doc = " ".join((self.args.__doc__ or "").split())
        return {"type": "function", "function": {"name": self.name, "description": f"{doc} {_returns(self.reply)}",
                                                 "parameters": model_schema(self.args)}}


class ToolSet:
    """The tools of one run: what the model is sent, and what its calls are checked against."""

    def __init__(self, cap: Capabilities):
        self.capabilities = cap
        self.specs = {name: ToolSpec(name, args, DECLARATIONS[name][1]) for name, args in run_declarations(cap).items()}
        self.tools = [spec.openai() for spec in self.specs.values()]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def validate(self, name: str, args: object) -> tuple[BaseModel | None, list[str]]:
        """(the arguments as the tool's declared model, []) or (None, one message per problem)."""
        spec = self.specs.get(name)
        if spec is None:
            return None, [f"unknown tool {name!r}; available tools: {', '.join(self.names)}"]
        value, errors = validate(spec.args, args)
        if value is None:
            return None, errors
        base = DECLARATIONS[name][0]
        return base.model_construct(**value.model_dump()), []  # the run's model is stricter than base

    def hash(self) -> str:
        """sha256 of the tools as sent: what the manifest records."""
        canonical = json.dumps(self.tools, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def machine_capabilities(paths: int, steps: int, segmenter: str = "auto") -> Capabilities:
    """Capabilities from the registries: what ``doctor`` would report as found. A segmenter that
    finds objects from their keywords (SAM 3) is the detector when the run uses it."""
    from tools.detect import DETECTORS
    from tools.inpaint import INPAINTERS
    from tools.segment import choose_segmenter

    try:
        chosen = choose_segmenter(segmenter)[0]
    except ValueError:  # the run refuses the name before any model call
        chosen = None
    detectors = tuple(name for name, backend in DETECTORS.items() if backend.available()[0])
    if chosen is not None and chosen.grounded:
        detectors = (chosen.name,)
    inpainters = tuple((name, backend.summary, backend.takes_prompt) for name, backend in INPAINTERS.items()
                       if backend.available()[0])
    return Capabilities(detectors, inpainters, paths, steps, chosen is None or chosen.takes_points)
