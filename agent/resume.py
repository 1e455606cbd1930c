"""Going on with a run that stopped, and forking a run at a model turn to correct it.

Every run checkpoints its graph into ``RUN_DIR/checkpoints.sqlite`` after each step (LangGraph's
SqliteSaver). Graph state holds artifact ids only, so a checkpoint plus the run's ``artifacts/`` is
the whole run so far: ``resume`` continues from the last completed step, in the same folder and the
same trace (``seq`` goes on), without redoing finished layers or asking the model again for turns it
answered. A step that was cut off (a tool, a model call, finalize) runs again from its start.

``--from-turn N`` forks instead: a new folder gets the parent's artifacts and checkpoints, and the run
goes on from the checkpoint just before model turn N, with the user's new hints added to the
conversation there. Turns before N are not asked again (their answers are in the checkpoint), and the
layers peeled before N are the same artifacts; the new trace and manifest name the parent and turn.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path

from . import prompts
from .artifacts import ArtifactStore
from .context import RunContext, RunOptions
from .graph import build_graph
from .live import LiveView
from .run import (
    CHECKPOINTS,
    THREAD,
    RunReport,
    RunSetupError,
    drive,
    graph_config,
    make_model,
    open_checkpoints,
    tool_set,
)
from .trace import TraceWriter, read_trace

RESUMABLE = ("interrupted", "error")


def _recorded(run_dir: Path) -> tuple[list[dict], dict, dict]:
    """The trace's events, its run_start payload, and the manifest (empty when the run died without one)."""
    events = read_trace(run_dir / "trace.jsonl")
    start = next((e["payload"] for e in events if e["type"] == "run_start"), None)
    if start is None:
        raise RunSetupError(f"{run_dir}: the trace has no run_start event")
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    if not (run_dir / CHECKPOINTS).exists():
        raise RunSetupError(f"{run_dir}: no {CHECKPOINTS} (the run was made before runs kept checkpoints)")
    return events, start, manifest


def _options(run_dir: Path, out: Path, start: dict, events: list[dict], vlm_url: str | None,
             hints: list[str]) -> RunOptions:
    recorded = start["options"]
    image = Path(recorded["image"])
    if not image.exists():  # the photo moved: the run's own copy of the input serves (fidelity is then
        inputs = [e["payload"]["id"] for e in events if e["type"] == "artifact" and e["payload"]["kind"] == "input"]
        image = run_dir / "artifacts" / f"{inputs[0]}.png"  # measured on the working copy)
    options = RunOptions.recorded(image, out, recorded)
    options.planner = start["planner"] if start["planner"] in ("vlm", "heuristic") else "heuristic"
    options.quiet = False
    options.vlm_url = vlm_url or start.get("endpoint") or options.vlm_url
    options.model = start.get("model") or options.model
    options.hints = [*options.hints, *hints]
    return options.validate()


def _context(run_dir: Path, options: RunOptions, manifest: dict, trace: TraceWriter, view: LiveView) -> RunContext:
    from tools.image import read_photo

    store = ArtifactStore(run_dir)
    photo, _ = read_photo(options.image)
    ctx = RunContext(run_dir, options, store, trace, make_model(options.planner, options, store), options.planner,
                     view, tool_set(options), photo)
    ctx.notes.extend(manifest.get("notes", []))  # what the run was told before it stopped
    for role, names in (manifest.get("backends") or {}).items():
        ctx.backends[role].update(names)
    for key, seconds in (manifest.get("timings_s") or {}).items():
        if key != "total":
            ctx.timings[key] += seconds
    return ctx


def resume_run(run_dir: Path, vlm_url: str | None = None, quiet: bool = False) -> RunReport:
    """Continue ``run_dir`` from its last checkpoint, in place."""
    run_dir = Path(run_dir)
    events, start, manifest = _recorded(run_dir)
    if manifest.get("status") and manifest["status"] not in RESUMABLE:
        raise RunSetupError(f"{run_dir}: nothing to resume: the run ended {manifest['status']} "
                            f"({manifest.get('reason', '')}); use --from-turn N to fork it")
    options = _options(run_dir, run_dir, start, events, vlm_url, [])
    options.quiet = quiet
    view = LiveView(quiet)
    saver = open_checkpoints(run_dir)
    try:
        graph = build_graph(saver)
        config = graph_config(options)
        snapshot = graph.get_state(config)
        if not snapshot.next:
            raise RunSetupError(f"{run_dir}: nothing to resume: its checkpoints end after the last step")
        trace = TraceWriter(run_dir / "trace.jsonl", on_event=view.event, mode="a")
        ctx = _context(run_dir, options, manifest, trace, view)
        trace.emit("run", "decision", {"text": f"resumed: step {', '.join(snapshot.next)} runs again, after model "
                                               f"turn {snapshot.values.get('step', 0)}",
                                       "resumed": {"next": list(snapshot.next),
                                                   "checkpoint": snapshot.config["configurable"]["checkpoint_id"]}})
        resumes = [*manifest.get("resumes", []), {"after_turn": snapshot.values.get("step", 0),
                                                   "next": list(snapshot.next)}]
        return drive(ctx, graph, None, time.perf_counter(), {"resumes": resumes}, config, snapshot.values)
    finally:
        saver.conn.close()


def _before_turn(graph, config: dict, turn: int):
    """The checkpoint where model turn ``turn`` is next: plan is to run with ``turn - 1`` turns taken."""
    candidates = [s for s in graph.get_state_history(config)
                  if s.next == ("plan",) and s.values.get("step", 0) == turn - 1]
    if not candidates:
        turns = max((s.values.get("step", 0) for s in graph.get_state_history(config)), default=0)
        raise RunSetupError(f"--from-turn {turn}: the run has model turns 1..{turns}")
    return candidates[-1]  # the oldest: history lists the newest first


def fork_run(run_dir: Path, turn: int, hints: list[str], out: Path | None = None, vlm_url: str | None = None,
             quiet: bool = False) -> RunReport:
    """A new run folder that goes on from the checkpoint before model turn ``turn`` of ``run_dir``."""
    run_dir = Path(run_dir)
    events, start, _ = _recorded(run_dir)
    if turn < 1:
        raise RunSetupError(f"--from-turn must be at least 1, got {turn}")
    out = Path(out) if out else run_dir.with_name(f"{run_dir.name}-fork{turn}-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and any(out.iterdir()):
        raise RunSetupError(f"--out {out}: folder exists and is not empty")
    saver = open_checkpoints(run_dir)  # read the parent first: a bad turn number leaves no folder behind
    try:
        parent = _before_turn(build_graph(saver), {"configurable": {"thread_id": THREAD}}, turn)
    finally:
        saver.conn.close()
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("artifacts", "vectors"):
        if (run_dir / folder).exists():
            shutil.copytree(run_dir / folder, out / folder, dirs_exist_ok=True)
    shutil.copy2(run_dir / CHECKPOINTS, out / CHECKPOINTS)
    options = _options(run_dir, out, start, events, vlm_url, hints)
    options.quiet = quiet
    view = LiveView(quiet)
    trace = TraceWriter(out / "trace.jsonl", on_event=view.event, mode="x")
    saver = open_checkpoints(out)
    try:
        graph = build_graph(saver)
        ctx = _context(out, options, {}, trace, view)
        fork = {"run": str(run_dir), "turn": turn, "checkpoint": parent.config["configurable"]["checkpoint_id"],
                "hints": hints}
        trace.emit("run", "run_start", {
            "image": str(options.image), "run_dir": str(out), "planner": ctx.planner, "model": ctx.model.name,
            "endpoint": ctx.model.endpoint, "hints": options.hints, "seed": options.seed,
            "options": options.to_dict(), "prompt_hashes": prompts.hashes(), "tool_schema_hash": ctx.tools.hash(),
            "fork_of": fork})
        config = parent.config
        if hints:
            if ctx.planner == "heuristic":
                ctx.note("run", "the heuristic planner cannot follow hints; not honoured: " + "; ".join(hints))
            text = prompts.render("fork_hint", hints="\n".join(f"- {h}" for h in hints))
            config = graph.update_state(config, {"messages": [{"role": "user", "content": text}]}, as_node="act")
        ctx.note("run", f"forked from {run_dir} before model turn {turn}; turns 1..{turn - 1} and their layers "
                        "come from its checkpoint")
        config = {**config, "recursion_limit": graph_config(options)["recursion_limit"]}
        return drive(ctx, graph, None, time.perf_counter(), {"fork_of": fork}, config, parent.values)
    finally:
        saver.conn.close()
