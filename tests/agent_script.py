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

CUP = [273, 29, 703, 643]  # Qwen grounding boxes, relative 0..1000
SPOON = [520, 500, 710, 830]
SAUCER = [110, 220, 810, 990]


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
        # 2. hermes <tool_call> inside content, after a <think> block
        lambda b: content_tool_call("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "cup",
                                                "method": "auto"},
                                    think="The mask follows the cup's rim and body. Cut it out."),
        # 3. text only: the agent must ask again
        lambda b: text_message("The spoon lies on the saucer, in front of it. I will segment the spoon next."),
        # 4. missing closing brace and a box with three numbers: a schema error goes back to the model
        lambda b: content_tool_call("segment", {"target": "silver spoon", "keywords": ["spoon"],
                                                "bbox_2d": SPOON[:3]}, missing_brace=True),
        # 5. the corrected call, in a ```json fence
        lambda b: fenced_json_call("segment", {"target": "silver spoon", "keywords": ["spoon"], "bbox_2d": SPOON}),
        # 6. standard tool_calls with the reasoning in `reasoning`
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
