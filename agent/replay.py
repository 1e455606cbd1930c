"""Replaying a saved run: show it step by step, or execute it again offline.

``--rerun`` runs the whole pipeline again with no endpoint: a ``ReplayModel`` serves the recorded
model responses in order and compares each new request's hash with the recorded one, so the first
turn whose request differs (an edited prompt, a changed tool result, other settings) is named. The
input is the run's own stored copy of the photo, so a run folder replays anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console

from .context import RunOptions
from .live import LiveView, render_event
from .run import RunReport, RunSetupError, run_peel
from .trace import read_trace
from .vlm import ReplayModel


def show_run(run_dir: Path, quiet: bool = False) -> list[dict]:
    events = read_trace(Path(run_dir) / "trace.jsonl")
    if not quiet:
        console = Console(highlight=False)
        for e in events:
            render_event(console, e)
    return events


@dataclass
class RerunResult:
    report: RunReport
    divergence: dict | None
    same_layers: bool | None
    summary: str


def _recorded_options(run_dir: Path, events: list[dict], out: Path) -> tuple[RunOptions, str]:
    start = next((e for e in events if e["type"] == "run_start"), None)
    if start is None:
        raise RunSetupError(f"{run_dir}: the trace has no run_start event")
    inputs = [e for e in events if e["type"] == "artifact" and e["payload"].get("kind") == "input"]
    if not inputs:
        raise RunSetupError(f"{run_dir}: the trace records no input image")
    image = Path(run_dir) / "artifacts" / f"{inputs[0]['payload']['id']}.png"
    if not image.exists():
        raise RunSetupError(f"{run_dir}: the input artifact {image.name} is missing")
    opts = RunOptions.recorded(image, out, start["payload"]["options"])
    return opts, start["payload"]["model"]


def rerun_run(run_dir: Path, out: Path | None = None, quiet: bool = False) -> RerunResult:
    run_dir = Path(run_dir)
    events = read_trace(run_dir / "trace.jsonl")
    out = out or run_dir.with_name(f"{run_dir.name}-rerun-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    options, model_name = _recorded_options(run_dir, events, out)
    options.quiet = quiet
    requests = [e for e in events if e["type"] == "llm_request"]
    responses = [e for e in events if e["type"] == "llm_response"]
    model = ReplayModel([r["payload"] for r in responses], [r["payload"]["hash"] for r in requests],
                        name=model_name)
    report = run_peel(options, model=model, planner="replay", view=LiveView(quiet),
                      extra_manifest={"replay_of": str(run_dir)})
    divergence = model.divergence
    if divergence is not None:
        turn = divergence["model_turn"]
        divergence["seq"] = requests[turn]["seq"] if turn < len(requests) else None
        divergence["turn"] = turn + 1
    recorded = _layer_ids(run_dir)
    now = _layer_ids(report.run_dir)
    same = recorded == now if recorded is not None and now is not None else None
    if divergence is None and model.served == len(responses):
        summary = (f"replay matched the recording: {model.served} model turns, "
                   f"{'same layers (same artifact hashes)' if same else 'layers differ'}; new run in {report.run_dir}")
    elif divergence is None:
        summary = (f"replay used {model.served} of {len(responses)} recorded turns before the run ended "
                   f"({report.status}: {report.reason}); new run in {report.run_dir}")
    else:
        summary = (f"replay diverged at model turn {divergence['turn']} (trace event {divergence['seq']}): the "
                   f"request differs from the recording; layers {'match' if same else 'differ'}; "
                   f"new run in {report.run_dir}")
    (report.run_dir / "replay.json").write_text(json.dumps(
        {"replay_of": str(run_dir), "divergence": divergence, "same_layers": same, "summary": summary}, indent=2))
    return RerunResult(report, divergence, same, summary)


def _layer_ids(run_dir: Path) -> list[str] | None:
    p = Path(run_dir) / "manifest.json"
    if not p.exists():
        return None
    layers = json.loads(p.read_text()).get("layers") or []
    return [entry["layer_id"] for entry in layers]
