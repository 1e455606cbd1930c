"""The peeling loop as a LangGraph state machine: prepare -> plan -> act -> plan ... -> finalize.

``plan`` is one model turn (or one heuristic-planner turn, through the same parser); ``act`` runs
the called tools, validating arguments against their schemas, and hands every result, errors
included, back to the model, which decides what to do next. The loop stops on the model's
``finish``, the layer limit, the step budget, or repeated failures of one tool; LangGraph's
recursion limit, derived from the step budget, is only a backstop. ``finalize`` always runs last.
"""

from __future__ import annotations

import json
from typing import Literal

from langgraph.graph import END, START, StateGraph

from . import prompts
from .context import RunContext
from .finalize import finalize_run
from .parse import parse_message
from .schema import TOOLS, normalize_arguments, validate_arguments
from .state import AgentState, InputState
from .toolbox import Toolbox, ToolError
from .trace import request_hash
from .vlm import window_images


def _image_part(artifact_id: str) -> dict:
    return {"type": "image_url", "image_url": {"url": f"artifact://{artifact_id}"}}


def observe_message(ctx: RunContext, state: AgentState, caption: str | None = None,
                    image_id: str | None = None) -> dict:
    canvas = state["canvas"]
    layers = state.get("layers", [])
    padding = ""
    if canvas["width"] != canvas["frame"][0] or canvas["height"] != canvas["frame"][1]:
        padding = f" (padded; the original frame starts at x={canvas['offset'][0]}, y={canvas['offset'][1]})"
    text = prompts.render("observe", width=canvas["width"], height=canvas["height"], padding_note=padding,
                          layers=", ".join(f"{i + 1}. {layer['name']} ({layer['layer_id'][:12]})"
                                           for i, layer in enumerate(layers)) or "none",
                          round=len(layers) + 1, max_layers=ctx.options.max_layers)
    if caption:
        text = f"{caption}\n{text}"
    return {"role": "user", "content": [{"type": "text", "text": text},
                                        _image_part(image_id or canvas["residual_id"])]}


def working_copy(rgb, size: int):
    """The photo at most ``size`` px on its longest side (Lanczos), and the scale applied.

    Fitting cost grows with the pixels paths cover, so a 12-megapixel photo would take hours on a
    CPU; paths are resolution-free, so the SVG loses nothing by being scaled back afterwards.
    """
    import numpy as np
    from PIL import Image

    h, w = rgb.shape[:2]
    if not size or max(h, w) <= size:
        return rgb, 1.0
    scale = size / max(h, w)
    im = Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    return np.asarray(im, dtype=np.float32) / 255, scale


def build_graph(ctx: RunContext, checkpointer=None):
    toolbox = Toolbox(ctx)
    opts = ctx.options

    def prepare(state: InputState) -> dict:
        from tools.vectorize.api import load_image

        with RunContext.timer(ctx, "prepare"):
            img = load_image(state["image"]).numpy()
            rgb = img[..., :3] + (1 - img[..., 3:])  # premultiplied over white
            source = [rgb.shape[1], rgb.shape[0]]
            rgb, scale = working_copy(rgb, opts.size)
            residual_id = ctx.artifact("prepare", rgb, "input")
        h, w = rgb.shape[:2]
        canvas = {"residual_id": residual_id, "input_id": residual_id, "width": w, "height": h, "offset": [0, 0],
                  "frame": [w, h], "source": source}
        if scale != 1:
            note = (f"working at {w}x{h} (the photo is {source[0]}x{source[1]}; --size {opts.size}); "
                    "result.svg is scaled back to the photo's size")
            ctx.note("prepare", note)
        hints = "\n".join(f"- {h}" for h in state["hints"]) or "- (none)"
        system = {"role": "system", "content": prompts.render("system", hints=hints, max_layers=opts.max_layers)}
        base = {"canvas": canvas, "layers": [], "masks": {}, "step": 0, "failures": {}, "status": "running",
                "reason": "", "pending": []}
        first = observe_message(ctx, base)
        ctx.trace.emit("prepare", "decision", {"text": f"input {w}x{h}", "input_id": residual_id})
        return {**base, "messages": [system, first]}

    def plan(state: AgentState) -> dict:
        step = state["step"] + 1
        if step > opts.turns:
            ctx.trace.emit("plan", "decision", {"text": f"step budget of {opts.turns} model turns spent"})
            return {"status": "step_budget", "reason": f"step budget of {opts.turns} model turns spent",
                    "pending": [], "step": step}
        messages = window_images(state["messages"], opts.image_window)
        request = {"model": ctx.model.name, "messages": messages, "tools": TOOLS, "tool_choice": "auto",
                   **opts.sampling.as_request()}
        images = sum(1 for m in messages if isinstance(m.get("content"), list)
                     for part in m["content"] if part.get("type") == "image_url")
        ctx.trace.emit("plan", "llm_request", {"turn": step, "request": request, "hash": request_hash(request),
                                               "images": images})
        with RunContext.timer(ctx, "model"):
            completion = ctx.model.complete(request)
        parsed = parse_message(completion.message)
        from_text = not completion.message.get("tool_calls")  # ids of calls parsed from text repeat per turn
        calls = [{"id": f"call_{step}_{i}" if from_text or not c.id else c.id, "name": c.name,
                  "arguments": c.arguments, "raw": c.raw, "error": c.error} for i, c in enumerate(parsed.calls)]
        ctx.trace.emit("plan", "llm_response", {
            "turn": step, "message": completion.message, "latency_s": round(completion.latency_s, 3),
            "attempts": completion.attempts,
            "parsed": {"reasoning": parsed.reasoning, "text": parsed.text, "calls": calls, "quirks": parsed.quirks}})
        assistant: dict = {"role": "assistant", "content": parsed.text or None}
        if calls:
            assistant["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["arguments"]) if c["arguments"]
                              is not None else c["raw"]}} for c in calls]
        messages = [*state["messages"], assistant]
        if not calls:
            messages.append({"role": "user", "content": prompts.render("nudge")})
            ctx.trace.emit("plan", "decision", {"text": "no tool call in the answer; asked again"})
        return {"messages": messages, "pending": calls, "step": step}

    def act(state: AgentState) -> dict:
        updates: dict = {}
        current: AgentState = dict(state)  # type: ignore[assignment]
        tool_messages, previews = [], []
        failures = dict(state.get("failures", {}))
        for call in state["pending"]:
            name, args = call["name"], call["arguments"]
            ctx.trace.emit("act", "tool_call", {"id": call["id"], "name": name, "arguments": args})
            if call["error"] is not None:
                result = {"error": f"could not parse the call: {call['error']}"}
            else:
                problems = validate_arguments(name, args)
                if problems:
                    result = {"error": "invalid arguments: " + "; ".join(problems)}
                else:
                    try:
                        out = toolbox.run(name, normalize_arguments(name, args), current)
                    except ToolError as exc:
                        result = {"error": str(exc)}
                    else:
                        result = out.result
                        current.update(out.updates)
                        updates.update(out.updates)
                        if out.preview:
                            previews.append((out.preview, out.preview_caption))
            failures[name] = failures.get(name, 0) + 1 if "error" in result else 0
            ctx.trace.emit("act", "tool_result", {"id": call["id"], "name": name, "result": result})
            tool_messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
        messages = [*state["messages"], *tool_messages]
        status, reason = current.get("status", "running"), current.get("reason", "")
        if status == "running":
            if len(current.get("layers", [])) >= opts.max_layers:
                status, reason = "layer_limit", f"layer limit of {opts.max_layers} reached"
            elif any(n >= opts.max_tool_failures for n in failures.values()):
                worst = max(failures, key=failures.get)
                status, reason = "tool_failures", f"{worst} failed {failures[worst]} times in a row"
        if status == "running":
            # show the model what changed: the last preview, with the usual round header
            image_id, caption = previews[-1] if previews else (None, None)
            messages.append(observe_message(ctx, current, caption, image_id))
        if status != "running":
            ctx.trace.emit("act", "decision", {"text": f"stop: {reason}"})
        return {**updates, "messages": messages, "pending": [], "failures": failures, "status": status,
                "reason": reason}

    def finalize(state: AgentState) -> dict:
        with RunContext.timer(ctx, "finalize"):
            return finalize_run(ctx, state)

    def after_plan(state: AgentState) -> Literal["act", "plan", "finalize"]:
        if state["status"] != "running":
            return "finalize"
        return "act" if state["pending"] else "plan"

    def after_act(state: AgentState) -> Literal["plan", "finalize"]:
        return "plan" if state["status"] == "running" else "finalize"

    g = StateGraph(AgentState, input_schema=InputState)
    g.add_node("prepare", prepare)
    g.add_node("plan", plan)
    g.add_node("act", act)
    g.add_node("finalize", finalize)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "plan")
    g.add_conditional_edges("plan", after_plan)
    g.add_conditional_edges("act", after_act)
    g.add_edge("finalize", END)
    return g.compile(checkpointer=checkpointer)


def recursion_limit(ctx: RunContext) -> int:
    """Backstop only: each model turn is at most two graph steps, plus prepare and finalize."""
    return 2 * ctx.options.turns + 8
