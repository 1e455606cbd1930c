"""Graph state: JSON values only.

Images, masks and layers live in the artifact store; state holds their ids. That keeps
checkpoints small and serialisable and makes every run replayable from its trace. ``InputState`` is
what a caller provides; ``AgentState`` is everything the graph tracks.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

Status = Literal["running", "finished", "step_budget", "layer_limit", "tool_failures", "error", "interrupted"]


class InputState(TypedDict):
    image: str  # path of the photo
    hints: list[str]


class Canvas(TypedDict):
    residual_id: str  # artifact id of the current residual (RGB)
    input_id: str  # artifact id of the photo as given (what the stacked layers must reproduce)
    width: int
    height: int
    offset: list[int]  # where the original frame's top-left sits on this canvas (grows with padding)
    frame: list[int]  # the original frame's width, height


class Layer(TypedDict, total=False):
    name: str
    layer_id: str  # artifact id of the RGBA layer on its canvas
    mask_id: str
    residual_before: str
    residual_after: str
    method: str  # inpainting backend used for the hole
    offset: list[int]  # canvas offset when the layer was cut
    size: list[int]  # canvas width, height then
    vector: dict  # {"file", "paths", "psnr"} once vectorized


def append_messages(left: list[dict], right: list[dict]) -> list[dict]:
    """The message reducer: nodes return only the messages they add."""
    return [*left, *right]


class AgentState(InputState, total=False):
    messages: Annotated[list[dict], append_messages]  # chat history with artifact:// image references
    canvas: Canvas
    masks: dict[str, dict]  # mask_id -> {"canvas_id", "target", "stats"}
    layers: list[Layer]  # in peel order: front-most first
    parse_errors: dict[str, str]  # call id -> why the last turn's call could not be parsed (usually empty)
    step: int  # model turns taken
    failures: dict[str, int]  # consecutive failures per tool
    status: Status
    reason: str
