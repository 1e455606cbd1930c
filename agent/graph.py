"""The peeling loop as a LangGraph state machine: prepare -> plan -> act -> plan ... -> finalize.

``plan`` is one model turn (or one heuristic-planner turn, through the same parser); ``act`` runs
the called tools, their arguments validated against the run's tool declarations, and hands every
reply, errors included, back to the model, which decides what to do next. The loop stops on the
model's ``finish``, the layer limit, the step budget, or repeated failures of one tool; LangGraph's
recursion limit, derived from the step budget, is only a backstop. ``finalize`` always runs last.

Nodes are plain functions of (state, runtime); the run's context (options, artifact store, trace,
model) arrives as ``runtime.context``, so graph state stays JSON: ids, names, counters.
"""

from __future__ import annotations

import json
from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from tools.image import working_copy

from . import prompts
from .context import RunContext
from .finalize import finalize_run
from .parse import parse_message
from .state import AgentState, InputState
from .toolbox import call
from .trace import request_hash
from .vlm import window_images


# ------------------------------------------------------------------------------------------ helpers
def observe_message(run: RunContext, state: AgentState, caption: str | None = None,
                    image_id: str | None = None) -> dict:
    """The user message that shows the model the current residual (or a tool's preview)."""
    canvas = state["canvas"]
    layers = state.get("layers", [])
    padding = ""
    if canvas["width"] != canvas["frame"][0] or canvas["height"] != canvas["frame"][1]:
        padding = f" (padded; the original frame starts at x={canvas['offset'][0]}, y={canvas['offset'][1]})"
    text = prompts.render("observe", width=canvas["width"], height=canvas["height"], padding_note=padding,
                          layers=", ".join(f"{i + 1}. {layer['name']} ({layer['layer_id'][:12]})"
                                           for i, layer in enumerate(layers)) or "none",
                          round=len(layers) + 1, max_layers=run.options.max_layers)
    if caption:
        text = f"{caption}\n{text}"
    image = {"type": "image_url", "image_url": {"url": f"artifact://{image_id or canvas['residual_id']}"}}
    return {"role": "user", "content": [{"type": "text", "text": text}, image]}


def pending_calls(state: AgentState) -> list[dict]:
    """The tool calls of the last assistant message, not yet answered."""
    last = state["messages"][-1]
    return last.get("tool_calls") or [] if last.get("role") == "assistant" else []


# -------------------------------------------------------------------------------------------- nodes
def prepare(state: InputState, runtime: Runtime[RunContext]) -> dict:
    run = runtime.context
    opts = run.options
    with run.timer("prepare"):
        rgb, scale = working_copy(run.photo, opts.size)
        residual_id = run.artifact("prepare", rgb, "input")
    h, w = rgb.shape[:2]
    source = [run.photo.shape[1], run.photo.shape[0]]
    canvas = {"residual_id": residual_id, "input_id": residual_id, "width": w, "height": h, "offset": [0, 0],
              "frame": [w, h], "source": source}
    if scale != 1:
        run.note("prepare", f"working at {w}x{h} (the photo is {source[0]}x{source[1]}; --size {opts.size}); "
                            "result.svg is scaled back to the photo's size")
    hints = "\n".join(f"- {h}" for h in state["hints"]) or "- (none)"
    system = {"role": "system", "content": prompts.render("system", hints=hints, max_layers=opts.max_layers)}
    base: AgentState = {"canvas": canvas, "layers": [], "masks": {}, "step": 0, "failures": {},  # type: ignore[typeddict-item]
                        "status": "running", "reason": "", "parse_errors": {}}
    run.trace.emit("prepare", "decision", {"text": f"input {w}x{h}", "input_id": residual_id})
    return {**base, "messages": [system, observe_message(run, base)]}


def plan(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    run = runtime.context
    opts = run.options
    step = state["step"] + 1
    if step > opts.turns:
        reason = f"step budget of {opts.turns} model turns spent"
        run.trace.emit("plan", "decision", {"text": reason})
        return {"status": "step_budget", "reason": reason, "step": step}
    messages = window_images(state["messages"], opts.image_window)
    request = {"model": run.model.name, "messages": messages, "tools": run.tools.tools, "tool_choice": "auto",
               **opts.sampling.as_request()}
    images = sum(1 for m in messages if isinstance(m.get("content"), list)
                 for part in m["content"] if part.get("type") == "image_url")
    run.trace.emit("plan", "llm_request", {"turn": step, "request": request, "hash": request_hash(request),
                                           "images": images})
    with run.timer("model"):
        completion = run.model.complete(request)
    parsed = parse_message(completion.message)
    from_text = not completion.message.get("tool_calls")  # ids of calls parsed from text repeat per turn
    calls = [{"id": f"call_{step}_{i}" if from_text or not c.id else c.id, "name": c.name,
              "arguments": c.arguments, "raw": c.raw, "error": c.error} for i, c in enumerate(parsed.calls)]
    run.trace.emit("plan", "llm_response", {
        "turn": step, "message": completion.message, "latency_s": round(completion.latency_s, 3),
        "attempts": completion.attempts,
        "parsed": {"reasoning": parsed.reasoning, "text": parsed.text, "calls": calls, "quirks": parsed.quirks}})
    assistant: dict = {"role": "assistant", "content": parsed.text or None}
    if calls:
        assistant["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["raw"] if c["error"] else json.dumps(c["arguments"])}}
            for c in calls]
    added = [assistant]
    if not calls:
        added.append({"role": "user", "content": prompts.render("nudge", tools=", ".join(run.tools.names))})
        run.trace.emit("plan", "decision", {"text": "no tool call in the answer; asked again"})
    return {"messages": added, "step": step, "parse_errors": {c["id"]: c["error"] for c in calls if c["error"]}}


def act(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    run = runtime.context
    opts = run.options
    current: AgentState = dict(state)  # type: ignore[assignment]
    updates: dict = {}
    replies, previews = [], []
    failures = dict(state.get("failures", {}))
    for tool_call in pending_calls(state):
        cid, name, raw = tool_call["id"], tool_call["function"]["name"], tool_call["function"]["arguments"]
        error = state.get("parse_errors", {}).get(cid)
        args = None if error else json.loads(raw)
        run.trace.emit("act", "tool_call", {"id": cid, "name": name, "arguments": args})
        if error:
            result = {"error": f"could not parse the call: {error}"}
        else:
            outcome = call(run, current, name, args)
            if isinstance(outcome, dict):
                result = outcome
            else:
                result = outcome.reply.dump()
                current.update(outcome.updates)  # type: ignore[typeddict-item]
                updates.update(outcome.updates)
                if outcome.preview:
                    previews.append((outcome.preview, outcome.preview_caption))
        failures[name] = failures.get(name, 0) + 1 if "error" in result else 0
        run.trace.emit("act", "tool_result", {"id": cid, "name": name, "result": result})
        replies.append({"role": "tool", "tool_call_id": cid, "content": json.dumps(result)})
    status, reason = current.get("status", "running"), current.get("reason", "")
    if status == "running":
        if len(current.get("layers", [])) >= opts.max_layers:
            status, reason = "layer_limit", f"layer limit of {opts.max_layers} reached"
        elif any(n >= opts.max_tool_failures for n in failures.values()):
            worst = max(failures, key=failures.__getitem__)
            status, reason = "tool_failures", f"{worst} failed {failures[worst]} times in a row"
    if status == "running":  # show the model what changed: the last preview, with the usual round header
        image_id, caption = previews[-1] if previews else (None, None)
        replies.append(observe_message(run, current, caption, image_id))
    else:
        run.trace.emit("act", "decision", {"text": f"stop: {reason}"})
    return {**updates, "messages": replies, "parse_errors": {}, "failures": failures, "status": status,
            "reason": reason}


def finalize(state: AgentState, runtime: Runtime[RunContext]) -> dict:
    with runtime.context.timer("finalize"):
        return finalize_run(runtime.context, state)


# ------------------------------------------------------------------------------------------ routing
def after_plan(state: AgentState) -> Literal["act", "plan", "finalize"]:
    if state["status"] != "running":
        return "finalize"
    return "act" if pending_calls(state) else "plan"


def after_act(state: AgentState) -> Literal["plan", "finalize"]:
    return "plan" if state["status"] == "running" else "finalize"


# ------------------------------------------------------------------------------------------- wiring
def build_graph(checkpointer=None):
    g = StateGraph(AgentState, context_schema=RunContext, input_schema=InputState)
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


def recursion_limit(options) -> int:
    """Backstop only: each model turn is at most two graph steps, plus prepare and finalize."""
    return 2 * options.turns + 8
