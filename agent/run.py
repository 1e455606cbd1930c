"""One run of the agent, end to end: checks, run folder, planner choice, the graph, the manifest.

Whatever happens inside the graph, the run folder ends with a trace, a manifest that says why the
run stopped, and the raster layers finished so far.
"""

from __future__ import annotations

import platform
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from tools.atomic import write_text_atomic
from tools.image import psnr, read_photo
from tools.metrics import resvg_render

from . import prompts
from .artifacts import ArtifactStore
from .context import RunContext, RunOptions
from .finalize import write_layer_pngs
from .graph import build_graph, recursion_limit
from .heuristic import HeuristicPlanner
from .live import LiveView
from .toolspec import ToolSet, machine_capabilities
from .trace import TraceWriter
from .viewer import write_page
from .vlm import EndpointError, Model, OpenAIModel, probe

CHECKPOINTS = "checkpoints.sqlite"
THREAD = "run"  # one thread per run folder: its checkpoints database holds this run only


class RunSetupError(ValueError):
    """The run cannot start (bad input, endpoint down with --planner vlm): one line for the user."""


@dataclass
class RunReport:
    run_dir: Path
    status: str
    reason: str
    manifest: dict


def _versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("amodal-agent", "torch", "langgraph", "openai", "numpy", "opencv-python-headless", "pypatchmatch",
                "resvg-py", "pydantic", "svgelements"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def default_run_dir(image: Path) -> Path:
    return Path("runs") / f"{image.stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def choose_planner(options: RunOptions) -> tuple[str, str | None]:
    """(planner kind, note) following --planner; RunSetupError for --planner vlm when it is down."""
    if options.planner == "heuristic":
        return "heuristic", None
    problem = probe(options.vlm_url, options.api_key, timeout=2.0)
    if problem is None:
        return "vlm", None
    if options.planner == "vlm":
        raise RunSetupError(f"--planner vlm: {problem}; start the server or use --planner heuristic")
    return "heuristic", f"VLM endpoint not reachable ({problem}); using the built-in heuristic planner"


def tool_set(options: RunOptions) -> ToolSet:
    """The tools a run with ``options`` offers the model on this machine (their hash goes into the manifest)."""
    return ToolSet(machine_capabilities(options.vectorize.paths, options.vectorize.steps, options.segmenter))


def make_model(kind: str, options: RunOptions, store: ArtifactStore) -> Model:
    if kind == "heuristic":
        return HeuristicPlanner(store, options.max_layers)
    return OpenAIModel(options.vlm_url, options.model, store, options.api_key, timeout=options.timeout)


def claim_run_dir(options: RunOptions) -> Path:
    """The run's own folder, made here: a default name gets a suffix when another run took it in the
    same second, and ``--out`` must be absent or empty. Two runs never share a folder (the trace is
    created exclusively, see ``run_peel``)."""
    if options.out:
        run_dir = Path(options.out)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunSetupError(f"--out {run_dir}: folder exists and is not empty")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    base = default_run_dir(Path(options.image))
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        run_dir = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RunSetupError(f"{base}: could not make a new run folder there")


def open_checkpoints(run_dir: Path):
    """The run's LangGraph checkpoints in ``RUN_DIR/checkpoints.sqlite``: what ``resume`` continues from."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    return SqliteSaver(sqlite3.connect(run_dir / CHECKPOINTS, check_same_thread=False))


def _prepare_fusion(options: RunOptions, view: LiveView) -> str | None:
    """With --fused, compile the renderer's stages now, before any model work: a machine where that
    cannot work fails with one line, and the wait is said, not silent. Returns the note for the trace."""
    if not options.vectorize.fused:
        return None
    from tools.vectorize.alv import resolve_device
    from tools.vectorize.fusion import prepare

    view.say("--fused: compiling the renderer's stages (once per process) ...", "dim")
    return f"--fused: the renderer's stages compiled in {prepare(resolve_device(options.vectorize.device).type):.0f} s"


def run_peel(options: RunOptions, model: Model | None = None, planner: str | None = None,
             view: LiveView | None = None, checkpointer=None, extra_manifest: dict | None = None) -> RunReport:
    """Peel ``options.image`` into layers. ``model``/``planner`` override the planner choice (replay);
    ``checkpointer`` defaults to the run folder's own SQLite checkpoints."""
    options.validate()
    view = view or LiveView(options.quiet)
    photo, photo_notes = read_photo(options.image)  # bad input fails here, before a run folder exists
    note = None
    if model is None:
        planner, note = choose_planner(options)  # before the folder exists: a refused run leaves nothing
    fused_note = _prepare_fusion(options, view)  # likewise
    run_dir = claim_run_dir(options)
    try:
        trace = TraceWriter(run_dir / "trace.jsonl", on_event=view.event, mode="x")
    except FileExistsError:
        raise RunSetupError(f"{run_dir}: another run is writing into this folder") from None
    store = ArtifactStore(run_dir)
    if model is None:
        model = make_model(planner, options, store)
    tools = tool_set(options)
    ctx = RunContext(run_dir, options, store, trace, model, planner or "vlm", view, tools, photo)
    started = time.perf_counter()
    trace.emit("run", "run_start", {
        "image": str(options.image), "run_dir": str(run_dir), "planner": ctx.planner, "model": model.name,
        "endpoint": model.endpoint, "hints": options.hints, "seed": options.seed,
        "options": options.to_dict(), "prompt_hashes": prompts.hashes(), "tool_schema_hash": tools.hash()})
    for text in photo_notes + [n for n in (note, fused_note) if n]:
        ctx.note("run", text)  # the live view shows every note as it reaches the trace
    if ctx.planner == "heuristic" and options.hints:
        ctx.note("run", "the heuristic planner cannot follow hints; not honoured: " + "; ".join(options.hints))
    saver = checkpointer or open_checkpoints(run_dir)
    try:
        return drive(ctx, build_graph(saver), {"image": str(options.image), "hints": list(options.hints)},
                     started, extra_manifest)
    finally:
        if checkpointer is None:
            saver.conn.close()


def graph_config(options: RunOptions) -> dict:
    return {"recursion_limit": recursion_limit(options), "configurable": {"thread_id": THREAD}}


def drive(ctx: RunContext, graph, graph_input: dict | None, started: float, extra_manifest: dict | None = None,
          config: dict | None = None, state: dict | None = None) -> RunReport:
    """Run the graph from ``graph_input`` (None: on from its last checkpoint) to its end or its failure,
    then write what every run leaves: finished layers, exports, manifest, the closed trace, the page."""
    options, run_dir, trace = ctx.options, ctx.run_dir, ctx.trace
    state = dict(state or {})
    status, reason = "error", ""
    try:
        with sigterm_as_interrupt():
            for values in graph.stream(graph_input, config or graph_config(options), stream_mode="values",
                                       context=ctx):
                state = values
        status, reason = state.get("status", "error"), state.get("reason", "")
    except KeyboardInterrupt:
        status, reason = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
    except EndpointError as exc:  # already in the user's terms
        status, reason = "error", str(exc)
    except Exception as exc:  # the run must still leave its trace, manifest and finished layers
        status, reason = "error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if status in ("error", "interrupted"):
        trace.emit("run", "error", {"message": reason})
        if state.get("canvas") and not (run_dir / "result.svg").exists():
            try:
                ctx.outputs = {"layers_so_far": write_layer_pngs(ctx, state)}
            except Exception as inner:  # report, never mask the first error
                trace.emit("run", "error", {"message": f"writing layers failed: {inner}"})
    if options.exports and (run_dir / "result.svg").exists():
        write_exports(ctx)
    elif options.exports:
        ctx.note("run", f"--export skipped: the run ended ({status}) without result.svg")
    manifest = build_manifest(ctx, state, status, reason, time.perf_counter() - started, extra_manifest)
    write_text_atomic(run_dir / "manifest.json", _json(manifest))
    trace.emit("run", "run_end", {"status": status, "reason": reason, "layers": len(state.get("layers", [])),
                                  "seconds": round(time.perf_counter() - started, 2)})
    trace.close()
    try:  # last, so the page tells the whole run; `amodal-agent view` rewrites it
        write_page(run_dir)
    except Exception as exc:
        print(f"amodal-agent: warning: result.html not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    return RunReport(run_dir, status, reason, manifest)


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler, ``kill``) ends the run as Ctrl-C does: cleanly, with its trace, manifest and
    finished layers. Only the main thread can install handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_exports(ctx: RunContext) -> None:
    """``--export``: the PSD and full-size PNG layers, rendered from result.svg, into the run folder."""
    from tools.export import PNG_DIR, PSD_NAME, export

    targets = {"psd": ctx.run_dir / PSD_NAME if "psd" in ctx.options.exports else None,
               "png_dir": ctx.run_dir / PNG_DIR if "png" in ctx.options.exports else None}
    try:
        with ctx.timer("export"):
            written = export(ctx.run_dir, **targets)
        ctx.outputs["exports"] = [str(p.relative_to(ctx.run_dir)) for p in written]
    except Exception as exc:  # the layers are done: a failed export is told, not a failed run
        ctx.note("run", f"export failed: {type(exc).__name__}: {exc}")


def _json(obj: dict) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def result_fidelity(run_dir: Path, photo: np.ndarray) -> dict:
    """PSNR / SSIM of result.svg as resvg renders it, against the photo as given (over white)."""
    from skimage.metrics import structural_similarity

    h, w = photo.shape[:2]
    ref = resvg_render((run_dir / "result.svg").read_text(), w, h, background="#ffffff")[..., :3]
    return {"psnr": round(psnr(ref, photo), 3),
            "ssim": round(float(structural_similarity(ref, photo, channel_axis=2, data_range=1.0)), 4),
            "measured_with": "resvg"}


def build_manifest(ctx: RunContext, state: dict, status: str, reason: str, seconds: float,
                   extra: dict | None) -> dict:
    o = ctx.options
    outputs = ctx.outputs
    layers = outputs.get("layers", [])
    manifest = {
        "status": status,
        "reason": reason,
        "versions": _versions(),
        "command": sys.argv,
        "image": str(o.image),
        "planner": ctx.planner,
        "model": ctx.model.name,
        "endpoint": ctx.model.endpoint,
        "sampling": o.sampling.as_request(),
        "seeds": {"run": o.seed, "sampling": o.sampling.seed, "segment": o.seed, "inpaint": o.seed,
                  "vectorize": o.seed},
        "prompt_hashes": prompts.hashes(),
        "tool_schema_hash": ctx.tools.hash(),
        "options": o.to_dict(),
        "hints": o.hints,
        "hints_not_honored": o.hints if ctx.planner == "heuristic" else [],
        "backends": {k: sorted(v) for k, v in ctx.backends.items()},
        "notes": ctx.notes,
        "model_turns": max(0, min(state.get("step", 0), o.turns)),
        "canvas": {k: state["canvas"][k] for k in ("width", "height", "offset", "frame", "source")
                   if k in state["canvas"]} if state.get("canvas")
        else None,
        "timings_s": {k: round(v, 3) for k, v in sorted(ctx.timings.items())} | {"total": round(seconds, 3)},
        "layers": layers,
        "layers_so_far": outputs.get("layers_so_far", []),
        "stack_refine": outputs.get("stack_refine"),
        "exports": outputs.get("exports", []),
    }
    if layers and (ctx.run_dir / "result.svg").exists():
        manifest["result"] = {"svg": "result.svg", "paths": sum(e["paths"] for e in layers),
                              "layers": len(layers), **result_fidelity(ctx.run_dir, ctx.photo)}
    if extra:
        manifest.update(extra)
    return manifest
