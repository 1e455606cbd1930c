"""The ``amodal-agent`` command line: thin wrappers over the Python API.

Every user mistake (a missing file, a bad flag value) ends in one line on stderr and exit code 2,
never a traceback: ``main`` runs the commands with click's standalone mode off and turns usage
errors and ``ValueError`` into that line.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer
from rich.console import Console

from tools.vectorize.options import VectorizeOptions

from .flags import (
    DEVICE,
    EXPORT,
    FUSED,
    GRADIENTS,
    HINT,
    ITERS,
    MAX_LAYERS,
    MODEL,
    PATHS,
    PLANNER,
    QUIET,
    SEED,
    SEGMENTER,
    SEGMENTS,
    SIZE,
    TIMEOUT,
    VLM_URL,
    default,
    run_options,
)
from .vlm import DEFAULT_URL

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Turn a photo into a layered, editable SVG of complete (amodal) objects.")
err_console = Console(stderr=True)


class UserError(Exception):
    """A one-line message for the user; exit code 2."""


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"amodal-agent {version('amodal-agent')}")
        except PackageNotFoundError:
            typer.echo("amodal-agent (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit."),
) -> None:
    """amodal-agent command line."""


@app.command()
def peel(
    image: Path = typer.Argument(..., help="The photo to peel into layers."),
    out: Path | None = typer.Option(None, "--out", help="Run folder [default: runs/<stem>-<YYYYmmdd-HHMMSS>]."),
    hint: list[str] = HINT, planner: str = PLANNER, vlm_url: str | None = VLM_URL, model: str | None = MODEL,
    timeout: float = TIMEOUT, segmenter: str = SEGMENTER, max_layers: int = MAX_LAYERS, paths: int = PATHS,
    size: int = SIZE, iters: int | None = ITERS, device: str = DEVICE, seed: int = SEED, export_formats: str = EXPORT,
    quiet: bool = QUIET, gradients: bool = GRADIENTS, fused: bool = FUSED, segments: int = SEGMENTS,
) -> int:
    """Peel IMAGE into complete object layers and write a layered SVG (the default command)."""
    from .run import run_peel

    options = run_options(image, out, hint, planner, vlm_url, model, timeout, segmenter, max_layers, paths, size,
                          iters, device, seed, export_formats, quiet, gradients, fused, segments)
    return _run_outcome(run_peel(options), quiet)


@app.command()
def batch(
    inputs: list[Path] = typer.Argument(..., help="Photos, folders (searched recursively) or globs."),
    out: Path = typer.Option(..., "--out", help="Batch folder: one run folder per photo, batch.csv, batch.json."),
    workers: int = typer.Option(2, "--workers", help="Photos worked on at once (Ray tasks)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="GPUs each worker reserves (e.g. 0.5)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="A running Ray cluster (auto or HOST:PORT) "
                                           "[default: a local Ray started for this batch]."),
    max_inflight: int = typer.Option(4, "--max-inflight", help="Most model requests in flight at once, over all "
                                     "workers (one server is shared)."),
    retries: int = typer.Option(2, "--retries", help="Times a photo whose worker died is tried again."),
    hint: list[str] = HINT, planner: str = PLANNER, vlm_url: str | None = VLM_URL, model: str | None = MODEL,
    timeout: float = TIMEOUT, segmenter: str = SEGMENTER, max_layers: int = MAX_LAYERS, paths: int = PATHS,
    size: int = SIZE, iters: int | None = ITERS, device: str = DEVICE, seed: int = SEED, export_formats: str = EXPORT,
    quiet: bool = QUIET, gradients: bool = GRADIENTS, fused: bool = FUSED, segments: int = SEGMENTS,
) -> int:
    """Peel many photos on Ray (local by default), resumable: a rerun skips finished photos."""
    from .batch import BatchOptions, run_batch

    template = run_options(Path("photo.png"), None, hint, planner, vlm_url, model, timeout, segmenter, max_layers,
                           paths, size, iters, device, seed, export_formats, True, gradients, fused, segments)
    summary = run_batch(BatchOptions(inputs=list(inputs), out=out, workers=workers, gpus_per_worker=gpus_per_worker,
                                     ray_address=ray_address, max_inflight=max_inflight, retries=retries,
                                     quiet=quiet), template)
    return summary.exit_code


def _run_outcome(report, quiet: bool) -> int:
    """The exit code of a run; a failed or interrupted run says why in one line even under --quiet."""
    if report.status in ("error", "interrupted"):
        _fail(f"run {report.status}: {report.reason}; its trace and finished layers are in {report.run_dir}")
        return 130 if report.status == "interrupted" else 1
    if not quiet:
        Console(stderr=True, highlight=False).print(f"{report.run_dir}: {report.status} ({report.reason}); "
                                                    f"see {report.run_dir / 'result.html'}")
    return 0


@app.command()
def replay(
    run_dir: Path = typer.Argument(..., help="A run folder (with trace.jsonl)."),
    rerun: bool = typer.Option(False, "--rerun", help="Execute the run again, serving the recorded model "
                               "responses, and report where it diverges."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the rerun [default: <RUN_DIR>-rerun-<time>]."),
    quiet: bool = typer.Option(False, "--quiet", help="No step-by-step display."),
) -> int:
    """Show a saved run step by step, or re-execute it offline with --rerun."""
    from .replay import rerun_run, show_run

    if not rerun:
        show_run(run_dir, quiet=quiet)
        return 0
    result = rerun_run(run_dir, out, quiet=quiet)
    print(result.summary)
    return _run_outcome(result.report, quiet=True)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="A run folder that stopped (interrupted, or failed)."),
    from_turn: int | None = typer.Option(None, "--from-turn", help="Fork instead: a new run that goes on from "
                                         "just before model turn N of RUN_DIR (any run, finished ones too)."),
    hint: list[str] = typer.Option([], "--hint", help="With --from-turn: guidance the model gets from turn N "
                                   "on (repeatable)."),
    out: Path | None = typer.Option(None, "--out", help="With --from-turn: the new run folder [default: "
                                    "<RUN_DIR>-fork<N>-<time>]."),
    vlm_url: str | None = typer.Option(None, "--vlm-url", help="Endpoint to go on with [default: the run's own]."),
    quiet: bool = typer.Option(False, "--quiet", help="No live output (errors are still said)."),
) -> int:
    """Go on with a run from its last checkpoint (no finished layer redone, no answered turn asked
    again), or fork it at a model turn with new hints (--from-turn)."""
    from .resume import fork_run, resume_run

    if from_turn is None:
        if hint or out is not None:
            raise UserError("--hint and --out go with --from-turn (a resumed run goes on in its own folder)")
        return _run_outcome(resume_run(run_dir, vlm_url, quiet), quiet)
    return _run_outcome(fork_run(run_dir, from_turn, list(hint), out, vlm_url, quiet), quiet)


@app.command()
def vectorize(
    image: Path = typer.Argument(..., help="Image to vectorize (PNG, JPEG, ...; RGBA keeps its transparency)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the SVG."),
    mask: Path | None = typer.Option(None, "--mask", help="Grey or alpha mask of the layer, same size as IMAGE."),
    paths: int = typer.Option(default(VectorizeOptions, "paths"), "--paths", help="Ceiling on the number of paths."),
    iters: int | None = typer.Option(None, "--iters", help="Optimizer steps [default: scaled with --paths]."),
    preview: Path | None = typer.Option(None, "--preview", help="Also write our renderer's image of the result."),
    seed: int = typer.Option(default(VectorizeOptions, "seed"), "--seed",
                             help="Random seed (same seed, same SVG on the same device)."),
    device: str = typer.Option(default(VectorizeOptions, "device"), "--device", help="cpu, cuda or auto."),
    init: str = typer.Option(default(VectorizeOptions, "init"), "--init",
                             help="Initialisation: content (superpixels) or random."),
    prune: bool = typer.Option(default(VectorizeOptions, "prune"), "--prune/--no-prune",
                               help="Prune paths that contribute nothing."),
    prune_method: str = typer.Option(default(VectorizeOptions, "prune_method"), "--prune-method",
                                     help="occlusion, area or opacity."),
    add: bool = typer.Option(default(VectorizeOptions, "add"), "--add/--no-add", help="Add paths where the error is."),
    gradients: bool = GRADIENTS, segments: int = SEGMENTS,
    fused: bool = FUSED,
    label: str = typer.Option("layer", "--label", help="Layer name in the SVG."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
) -> None:
    """Vectorize one layer (no agent): closed cubic Bezier paths fitted by Adaptive Layered Vectorization."""
    from tools.image import load_layer
    from tools.vectorize.alv import fit_layer
    from tools.vectorize.render import tune_cpu_allocator
    from tools.vectorize_file import write_preview, write_result

    if output.suffix.lower() != ".svg":
        raise UserError(f"-o {output}: the output must end in .svg")
    try:
        opts = VectorizeOptions(paths=paths, iters=iters, seed=seed, device=device, init=init,  # type: ignore[arg-type]
                                prune=prune, prune_method=prune_method, add=add,  # type: ignore[arg-type]
                                gradients=gradients, fused=fused, segments=segments).validate()
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    target, layer_mask = load_layer(image, mask)
    tune_cpu_allocator()
    with _optimizer_progress(quiet, opts.steps) as report:
        result = fit_layer(target, layer_mask, opts, report)
    out = write_result(result, output, label)
    msg = f"{out}: {result.num_paths} paths, {result.seconds:.1f} s on {result.device}"
    if preview is not None:
        msg += f"; preview {write_preview(result, preview)}"
    if not quiet:
        print(msg)


@app.command()
def edit(
    svg: Path = typer.Argument(..., help="A layered SVG (a run's result.svg, or one edited since)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the edited SVG (may be SVG itself)."),
    layer: str = typer.Option(..., "--layer", help="The layer: its id (layer-03-cup), label (cup) or number (3)."),
    recolor: str | None = typer.Option(None, "--recolor", help="Shift the layer's colours so its visible mean "
                                       "colour becomes COLOR (#rrggbb, #rgb, rgb(...) or a name); shading kept."),
    move: tuple[float, float] | None = typer.Option(None, "--move", help="Translate the layer by DX DY pixels."),
    scale: float | None = typer.Option(None, "--scale", help="Scale the layer by S about its centre."),
    remove: bool = typer.Option(False, "--remove", help="Delete the layer."),
    raise_: bool = typer.Option(False, "--raise", help="Move the layer one step towards the front."),
    lower: bool = typer.Option(False, "--lower", help="Move the layer one step towards the back."),
    to_front: bool = typer.Option(False, "--to-front", help="Make the layer the front-most."),
    to_back: bool = typer.Option(False, "--to-back", help="Make the layer the back-most."),
    replace: Path | None = typer.Option(None, "--replace", help="Replace the layer's paths with all paths of "
                                        "OTHER.svg (same pixel coordinates)."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing on success."),
) -> None:
    """Edit one object layer of a layered SVG: recolour, move, scale, remove, restack or replace it."""
    from tools.edit import Edit, apply_edit
    from tools.svg import read_svg, write_svg

    chosen = [Edit(op, value) for op, value, given in (
        ("recolor", recolor, recolor is not None), ("move", move, move is not None),
        ("scale", scale, scale is not None), ("remove", None, remove), ("raise", None, raise_),
        ("lower", None, lower), ("to-front", None, to_front), ("to-back", None, to_back),
        ("replace", replace, replace is not None)) if given]
    if len(chosen) != 1:
        raise UserError("give exactly one of --recolor, --move, --scale, --remove, --raise, --lower, --to-front, "
                        f"--to-back, --replace (got {len(chosen)})")
    if output.suffix.lower() != ".svg":
        raise UserError(f"-o {output}: the output must end in .svg")
    doc, what = apply_edit(read_svg(svg), layer, chosen[0])
    for warning in dict.fromkeys(doc.warnings):
        err_console.print(f"warning: {warning}", highlight=False)
    out = write_svg(doc, output)
    if not quiet:
        print(f"{out}: {what}")


@app.command()
def view(
    run_dir: Path = typer.Argument(..., help="A run folder (with manifest.json and trace.jsonl)."),
    open_: bool = typer.Option(False, "--open", help="Also open the page in the default browser."),
) -> None:
    """Write RUN_DIR/result.html (the layers and the model's turns, one offline page) and print its path."""
    from .viewer import write_page

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such folder")
    page = write_page(run_dir)
    print(page)
    if open_:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            raise UserError(f"no browser could be started here; open {page} yourself")


@app.command()
def export(
    target: Path = typer.Argument(..., help="A run folder (its result.svg is used) or a layered SVG."),
    psd: Path | None = typer.Option(None, "--psd", help="Write a layered PSD here: one named pixel layer per "
                                    "object, back to front."),
    png_dir: Path | None = typer.Option(None, "--png-dir", help="Write one RGBA PNG per layer into this folder."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing on success."),
) -> None:
    """Render every layer from the vectors at the SVG's full size into a PSD and/or PNGs (both, into the
    run folder, when neither option is given)."""
    from tools.export import export as export_layers

    if psd is not None and psd.suffix.lower() != ".psd":
        raise UserError(f"--psd {psd}: the output must end in .psd")
    written = export_layers(target, psd, png_dir)
    if not quiet:
        print("\n".join(map(str, written)))


@app.command()
def doctor(
    vlm_url: str | None = typer.Option(None, "--vlm-url", help="Endpoint to probe [default: $AMODAL_VLM_URL or "
                                       f"{DEFAULT_URL}]."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON (for scripts)."),
) -> int:
    """List every backend: found or not, where it looked, the one-line fix (exit 1 if a run cannot work)."""
    import json
    from dataclasses import asdict

    from rich.table import Table

    from .doctor import diagnose, missing_required

    checks = diagnose(vlm_url)
    if as_json:
        print(json.dumps([asdict(c) for c in checks], indent=1))
    else:
        table = Table(title="amodal-agent doctor", show_lines=False)
        for column in ("role", "backend", "found", "where it looked", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row(c.role, c.backend, "[green]yes[/]" if c.found else ("[red]NO[/]" if c.required else "no"),
                          c.where, c.fix)
        Console().print(table)
        vlm = next(c for c in checks if c.role == "planner")
        Console().print("--planner auto would use " + ("the VLM" if vlm.found else "the heuristic planner (no VLM)"))
    missing = missing_required(checks)
    for c in missing:
        _fail(f"{c.role} backend {c.backend} is required and missing: {c.fix}")
    return 1 if missing else 0


class _optimizer_progress:
    """A rich progress bar fed by the optimizer's Progress reports (nothing when quiet)."""

    def __init__(self, quiet: bool, total: int):
        self.quiet, self.total = quiet, total
        self.bar = None

    def __enter__(self):
        if self.quiet:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("fitting"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.5f}  PSNR {task.fields[psnr]:.2f} dB  "
                                       "paths {task.fields[paths]}"),
                            TimeElapsedColumn(), console=err_console, transient=False)
        self.bar.__enter__()
        task = self.bar.add_task("fit", total=self.total, loss=0.0, psnr=0.0, paths=0)

        def report(p) -> None:
            self.bar.update(task, completed=p.step, loss=p.loss, psnr=p.psnr, paths=p.paths)

        return report

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


COMMANDS = ("peel", "batch", "replay", "resume", "vectorize", "edit", "view", "export", "doctor")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in COMMANDS:
        args.insert(0, "peel")  # `amodal-agent photo.png` is `amodal-agent peel photo.png`
    try:
        rv = app(args=args, prog_name="amodal-agent", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted")
        return 130
    except Exception as exc:
        # click's usage errors (typer vendors its own click, so match by shape, not by class)
        if type(exc).__name__ == "NoArgsIsHelpError" and getattr(exc, "ctx", None) is not None:
            click_echo_err(exc.ctx.get_help())
            return 2
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            _fail(exc.format_message())
            return 2
        if isinstance(exc, UserError | ValueError | OSError):
            _fail(str(exc))
            return 2
        raise
    return rv if isinstance(rv, int) else 0


def click_echo_err(text: str) -> None:
    print(text, file=sys.stderr)


def _fail(message: str) -> None:
    line = " ".join(str(message).split())  # one line, whatever the message held
    print(f"amodal-agent: error: {line}", file=sys.stderr)


def run() -> None:
    """Console-script entry: exit with ``main``'s code."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
