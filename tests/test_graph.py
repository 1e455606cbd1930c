"""The graph's nodes and routing, each called alone with a hand-made state: no server, no model."""

from __future__ import annotations

import json

import numpy as np
from langgraph.runtime import Runtime

from agent.artifacts import ArtifactStore
from agent.context import RunContext, RunOptions
from agent.graph import act, after_act, after_plan, plan
from agent.live import LiveView
from agent.run import tool_set
from agent.state import append_messages
from agent.trace import TraceWriter
from agent.vlm import Completion


class OneAnswer:
    """A model that answers every request with the same message."""

    name, endpoint = "fake", "none"

    def __init__(self, message: dict):
        self.message, self.requests = message, []

    def complete(self, request: dict) -> Completion:
        self.requests.append(request)
        return Completion(self.message, {}, 0.0)


def context(tmp_path, model=None) -> RunContext:
    options = RunOptions(image=tmp_path / "photo.png", quiet=True, max_tool_failures=2)
    return RunContext(tmp_path, options, ArtifactStore(tmp_path), TraceWriter(tmp_path / "trace.jsonl"),
                      model or OneAnswer({"role": "assistant", "content": "hm"}), "vlm", LiveView(quiet=True),
                      tool_set(options), np.ones((8, 8, 3), np.float32))


def state_with(calls: list[tuple[str, str, str]], parse_errors: dict | None = None) -> dict:
    assistant = {"role": "assistant", "content": None, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": args}} for cid, name, args in calls]}
    canvas = {"residual_id": "r", "input_id": "r", "width": 8, "height": 8, "offset": [0, 0], "frame": [8, 8]}
    return {"image": "photo.png", "hints": [], "messages": [{"role": "system", "content": "s"}, assistant],
            "canvas": canvas, "layers": [], "masks": {}, "step": 1, "failures": {}, "status": "running",
            "reason": "", "parse_errors": parse_errors or {}}


def test_act_answers_every_call_once_and_stops_on_finish(tmp_path):
    state = state_with([("a", "segment", json.dumps({"target": "cup", "bbox_2d": [1, 2, 3]})),
                        ("b", "segment", "<tool_call>{broken"), ("c", "finish", json.dumps({"reason": "done"}))],
                       parse_errors={"b": "no JSON object"})
    out = act(state, Runtime(context=context(tmp_path)))
    replies = [json.loads(m["content"]) for m in out["messages"]]
    assert [m["tool_call_id"] for m in out["messages"]] == ["a", "b", "c"]  # no observation after finish
    assert replies[0] == {"error": "invalid arguments: bbox_2d: expected 4 numbers in 0..1000, got 3"}
    assert replies[1] == {"error": "could not parse the call: no JSON object"} and replies[2] == {"ok": True}
    assert out["status"] == "finished" and out["failures"] == {"segment": 2, "finish": 0}
    assert out["parse_errors"] == {} and after_act({**state, **out}) == "finalize"


def test_repeated_failures_of_one_tool_end_the_run(tmp_path):
    bad = json.dumps({"target": "cup"})
    state = state_with([("a", "segment", bad), ("b", "segment", bad)])
    out = act(state, Runtime(context=context(tmp_path)))
    assert out["status"] == "tool_failures" and out["reason"] == "segment failed 2 times in a row"


def test_plan_without_a_tool_call_nudges_and_plans_again(tmp_path):
    ctx = context(tmp_path)
    state = state_with([])
    state["messages"] = state["messages"][:1]
    out = plan(state, Runtime(context=ctx))
    assert [m["role"] for m in out["messages"]] == ["assistant", "user"] and out["step"] == 2
    merged = {**state, **out, "messages": append_messages(state["messages"], out["messages"])}
    assert after_plan(merged) == "plan"
    assert ctx.model.requests[0]["tools"] == ctx.tools.tools  # the run's tools, as declared


def test_plan_stops_when_the_step_budget_is_spent(tmp_path):
    ctx = context(tmp_path)
    state = state_with([])
    state["step"] = ctx.options.turns
    out = plan(state, Runtime(context=ctx))
    assert out["status"] == "step_budget" and ctx.model.requests == []
    assert after_plan({**state, **out}) == "finalize"
