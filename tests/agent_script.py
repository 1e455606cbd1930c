"""A scripted Qwen3-VL peel of scikit-image's coffee photo: cup, then spoon, then saucer.

Each turn is a function of the request the agent sent (so it can pass back the mask_id a tool
returned, as a real model does) and answers in one of the shapes vLLM + Qwen3-VL really produce.
Used by the agent tests and by ``traces/record.py`` (the recorded run in ``traces/``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scripted_server import content_tool_call, fenced_json_call, text_message, tool_calls_message

CUP = [285, 40, 690, 765]  # Qwen grounding boxes, relative 0..1000 (the cup: rim to handle)
SPOON = [540, 165, 700, 815]
SAUCER = [120, 195, 800, 965]
# Qwen points: the cup's red body, its shadowed foot and its handle; the saucer round it and the spoon's bowl
CUP_BODY = [[450, 580], [560, 560], [370, 690], [470, 640], [440, 660], [520, 650]]
NOT_CUP = [[250, 600], [680, 720], [600, 700], [330, 770]]
SPOON_POINTS = [[610, 700], [620, 760], [665, 250], [640, 540]]  # the spoon's bowl and handle
NOT_SPOON = [[720, 650], [500, 800]]  # the saucer round it


def coffee_photo(path: Path, longest: int = 96) -> Path:
    import skimage.data

    im = Image.fromarray(skimage.data.coffee())
    s = longest / max(im.size)
    im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS).save(path)
    return path


def last_result(body: dict) -> dict:
    for m in reversed(body["messages"]):
        if m["role"] == "tool":
            return json.loads(m["content"])
    raise AssertionError("no tool result yet")


def last_mask(body: dict) -> str:
    """The mask_id of the last segment (or pad_canvas) result."""
    for m in reversed(body["messages"]):
        if m["role"] == "tool" and "mask_id" in (reply := json.loads(m["content"])):
            return reply["mask_id"]
    raise AssertionError("no mask yet")


def with_flux_redo(script: list, at: int = -1, layer: str = "saucer") -> list:
    """``script`` with one more turn before its turn ``at`` (default: the last): the model, unhappy
    with the last fill (of ``layer``), asks for it again with FLUX and a prompt of what is behind (the
    method's LaMa-then-FLUX hybrid)."""
    redo = lambda b: tool_calls_message("inpaint", {  # noqa: E731
        "mask_id": last_mask(b), "layer_name": layer, "method": "flux",
        "prompt": "wooden table top with fine grain, lit from the left"})
    at = at % len(script)
    return [*script[:at], redo, *script[at:]]


def coffee_script() -> list:
    think_scene = ("The scene: an espresso cup on a red saucer, a spoon lying on the saucer, a wooden table. "
                   "The cup occludes the saucer's centre and nothing occludes the cup, so the cup is front-most.")
    return [
        # 1. standard tool_calls with reasoning_content
        lambda b: tool_calls_message("segment", {"target": "white espresso cup with red outside",
                                                 "keywords": ["cup", "espresso"], "bbox_2d": CUP},
                                     reasoning=think_scene),
        # 2. the preview shows the rim and the coffee only: the red body went with the red saucer; points fix it
        lambda b: tool_calls_message("segment", {"target": "white espresso cup with red outside",
                                                 "keywords": ["cup", "espresso"], "bbox_2d": CUP,
                                                 "points": CUP_BODY, "exclude_points": NOT_CUP},
                                     reasoning="The mask holds only the rim and the coffee: the cup's red body "
                                               "and handle read as the red saucer. Point at them, and at the "
                                               "saucer and the spoon."),
        # 3. hermes <tool_call> inside content, after a <think> block
        lambda b: content_tool_call("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "cup",
                                                "method": "auto"},
                                    think="The mask follows the cup's rim, body and handle. Cut it out."),
        # 4. text only: the agent must ask again
        lambda b: text_message("The spoon lies on the saucer, in front of it. I will segment the spoon next."),
        # 5. missing closing brace and a box with three numbers: a schema error goes back to the model
        lambda b: content_tool_call("segment", {"target": "silver spoon", "keywords": ["spoon"],
                                                "bbox_2d": SPOON[:3]}, missing_brace=True),
        # 6. the corrected call, in a ```json fence
        lambda b: fenced_json_call("segment", {"target": "silver spoon", "keywords": ["spoon"], "bbox_2d": SPOON,
                                                "points": SPOON_POINTS, "exclude_points": NOT_SPOON}),
        # 7. standard tool_calls with the reasoning in `reasoning`
        lambda b: tool_calls_message("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "spoon"},
                                     reasoning="The spoon mask is clean.", reasoning_field="reasoning"),
        lambda b: tool_calls_message("segment", {"target": "red saucer", "keywords": ["saucer", "plate"],
                                                 "bbox_2d": SAUCER}, reasoning="Only the saucer is left on the table."),
        lambda b: tool_calls_message("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "saucer"}),
        lambda b: tool_calls_message("finish", {"reason": "only the wooden table is left"},
                                     reasoning="What remains is the table top: background."),
    ]


def never_finishes() -> list:
    """A model that keeps segmenting the same thing and never calls finish."""
    return [lambda b: tool_calls_message("segment", {"target": "cup", "keywords": ["cup"], "bbox_2d": CUP})] * 50


def finish_called(trace: Path) -> bool:
    """Whether the run's trace holds the model's ``finish`` call (the requests list the tool by name
    too, so a plain search for it matches from the first turn on)."""
    if not trace.exists():
        return False
    return any('"type": "tool_call"' in line and '"name": "finish"' in line
               for line in trace.read_text().splitlines())


def to_array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))
