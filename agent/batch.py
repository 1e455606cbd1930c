"""``amodal-agent batch``: many photos on Ray, the same command on a laptop and on a cluster.

Each photo is one Ray task that runs the whole peel as ``peel`` does, into ``OUT/<name>/``. The
batch folder is the state: a photo whose run folder holds a finished manifest is skipped by a rerun,
a run folder left by a killed worker (a trace and checkpoints, no finished manifest) is resumed from
its checkpoints, and anything else is run afresh. Ray retries a task whose worker died (bounded); a
photo that fails is a row with its one-line reason and never stops the batch. Model requests from
all workers pass one gate (a small Ray actor), so a shared vLLM server gets at most
``--max-inflight`` requests at a time. Torch threads per worker are the cores divided among the
workers, so workers do not oversubscribe the machine.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tools.atomic import write_text_atomic

from .context import RunOptions

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
DONE = ("finished", "layer_limit", "step_budget", "tool_failures")  # a rerun skips these


class BatchError(ValueError):
    """Bad batch input (no photos, a file as the output folder, Ray missing or unreachable): one line."""


@dataclass
class BatchOptions:
    inputs: list[Path]
    out: Path
    workers: int = 2
    gpus_per_worker: float = 0.0
    ray_address: str | None = None
    max_inflight: int = 4
    retries: int = 2
    quiet: bool = False

    def validate(self) -> BatchOptions:
        for name, ok in (("--workers must be at least 1", self.workers >= 1),
                         ("--gpus-per-worker must be 0 or more", self.gpus_per_worker >= 0),
                         ("--max-inflight must be at least 1", self.max_inflight >= 1),
                         ("--retries must be 0 or more", self.retries >= 0)):
            if not ok:
                raise BatchError(name)
        if self.out.exists() and not self.out.is_dir():
            raise BatchError(f"--out {self.out}: is a file, not a folder")
        return self


@dataclass
class Row:
    image: str
    run: str
    status: str  # a manifest status, "failed" (no run came of it) or "not run" (the batch was interrupted)
    reason: str = ""
    layers: int | None = None
    paths: int | None = None
    psnr: float | None = None
    ssim: float | None = None
    seconds: float | None = None
    planner: str = ""
    backends: str = ""
    skipped: bool = False  # finished by an earlier batch


@dataclass
class Summary:
    rows: list[Row]
    seconds: float
    interrupted: bool = False
    skipped: int = 0
    csv: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if any(r.status not in DONE for r in self.rows) else 0


def find_images(inputs: list[Path]) -> list[Path]:
    """Photos named by files, folders (recursively) and globs, each once, in a stable order."""
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        if item.is_dir():
            paths = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_TYPES and p.is_file())
        elif item.is_file():
            paths = [item]
        elif glob.has_magic(text):
            paths = sorted(Path(p) for p in glob.glob(text, recursive=True)
                           if Path(p).suffix.lower() in IMAGE_TYPES and Path(p).is_file())
        else:
            raise BatchError(f"{item}: no such file or folder")
        for p in paths:
            found.setdefault(p.resolve(), None)
    if not found:
        raise BatchError(f"no photos ({', '.join(IMAGE_TYPES)}) found in {' '.join(map(str, inputs))}")
    return list(found)


def run_names(images: list[Path]) -> dict[Path, str]:
    """A stable folder name per photo: its stem, plus a short hash of its path where stems repeat."""
    stems: dict[str, int] = {}
    for p in images:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return {p: p.stem if stems[p.stem] == 1 else f"{p.stem}-{hashlib.sha1(str(p).encode()).hexdigest()[:6]}"
            for p in images}


def _manifest(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def row_of(image: Path, run_dir: Path, manifest: dict | None, skipped: bool = False) -> Row:
    if manifest is None:
        return Row(str(image), str(run_dir), "failed", "no manifest was written")
    result = manifest.get("result") or {}
    return Row(str(image), str(run_dir), manifest.get("status", "error"), manifest.get("reason", ""),
               result.get("layers"), result.get("paths"), result.get("psnr"), result.get("ssim"),
               (manifest.get("timings_s") or {}).get("total"), manifest.get("planner", ""),
               "; ".join(f"{k}: {', '.join(v)}" for k, v in (manifest.get("backends") or {}).items()), skipped)


# ----------------------------------------------------------------------------------------- worker


_GATE = None  # the batch's request gate, in a worker process


@contextmanager
def _gated():
    import ray

    ray.get(_GATE.acquire.remote())
    try:
        yield
    finally:
        _GATE.release.remote()


def run_one(image: str, run_dir: str, options: dict, threads: int, gate) -> dict:
    """One photo, in a Ray worker: resume what a killed worker left, else peel afresh. Never raises for
    the photo's own problems: they are the row's reason."""
    import torch

    from . import vlm
    from .resume import resume_run
    from .run import CHECKPOINTS, run_peel

    global _GATE
    _GATE = gate
    vlm.REQUEST_GATE = _gated
    torch.set_num_threads(threads)
    folder = Path(run_dir)
    started = time.perf_counter()
    try:
        manifest = _manifest(folder)
        left = (folder / CHECKPOINTS).exists() and (folder / "trace.jsonl").exists()
        if left and (manifest is None or manifest.get("status") == "interrupted"):
            try:
                resume_run(folder, quiet=True)
                return asdict(row_of(Path(image), folder, _manifest(folder)))
            except ValueError:
                pass  # what the killed worker left cannot be continued: start again
        if folder.exists():
            shutil.rmtree(folder)
        opts = RunOptions.from_dict(options, image=Path(image), out=folder)
        run_peel(opts)
        return asdict(row_of(Path(image), folder, _manifest(folder)))
    except (ValueError, OSError) as exc:  # the photo (or its folder) is the problem
        reason = " ".join(str(exc).split())
    except Exception as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    row = row_of(Path(image), folder, _manifest(folder))
    if row.status in DONE:
        return asdict(row)
    return asdict(Row(image, run_dir, "failed", reason, seconds=round(time.perf_counter() - started, 2)))


def _gate_actor(n: int):
    import asyncio

    import ray

    @ray.remote(num_cpus=0)
    class Gate:
        def __init__(self, n: int):
            self.slots = asyncio.Semaphore(n)

        async def acquire(self) -> None:
            await self.slots.acquire()

        async def release(self) -> None:
            self.slots.release()

    return Gate.remote(n)


# ----------------------------------------------------------------------------------------- driver


def _start_ray(opts: BatchOptions) -> bool:
    """Connect to ``--ray-address`` or start a local Ray; True when this batch started it."""
    try:
        import ray
    except ImportError:
        raise BatchError("batch needs Ray: pip install 'amodal-agent[batch]'") from None
    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if opts.ray_address and opts.ray_address != "auto":  # Ray itself retries an unreachable head for minutes
        _reachable(opts.ray_address)
    try:
        if opts.ray_address:
            ray.init(address=opts.ray_address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BatchError(f"--ray-address {opts.ray_address}: cannot connect ({' '.join(str(exc).split())[:200]})"
                         ) from None
    return True


def _reachable(address: str) -> None:
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError) as exc:
        raise BatchError(f"--ray-address {address}: cannot connect ({exc})") from None


def write_tables(out: Path, rows: list[Row]) -> Path:
    names = [f.name for f in fields(Row)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    write_text_atomic(out / "batch.json", json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return write_text_atomic(out / "batch.csv", buf.getvalue())


def run_batch(opts: BatchOptions, template: RunOptions) -> Summary:
    """Run every photo not finished yet; write batch.csv and batch.json; say what happened."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False, quiet=opts.quiet)
    opts.validate()
    images = find_images(opts.inputs)
    names = run_names(images)
    opts.out.mkdir(parents=True, exist_ok=True)
    rows: dict[Path, Row] = {}
    todo = []
    for image in images:
        run_dir = opts.out / names[image]
        manifest = _manifest(run_dir)
        if manifest is not None and manifest.get("status") in DONE:
            rows[image] = row_of(image, run_dir, manifest, skipped=True)
        else:
            todo.append(image)
    skipped = len(rows)
    console.print(f"batch: {len(images)} photos, {skipped} finished before (skipped), {len(todo)} to run "
                  f"with {opts.workers} workers")
    started = time.perf_counter()
    interrupted = False
    if todo:
        interrupted = _run_todo(opts, template, todo, names, rows, console)
    order = [rows.get(image) or Row(str(image), str(opts.out / names[image]), "not run", "the batch was interrupted")
             for image in images]
    summary = Summary(order, time.perf_counter() - started, interrupted, skipped)
    summary.csv = write_tables(opts.out, order)
    _say(console, summary)
    return summary


def _run_todo(opts: BatchOptions, template: RunOptions, todo: list[Path], names: dict[Path, str],
              rows: dict[Path, Row], console) -> bool:
    import ray
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    started_ray = _start_ray(opts)
    cores = int(ray.cluster_resources().get("CPU", 1))
    threads = max(1, cores // opts.workers)
    task = ray.remote(run_one).options(num_cpus=threads, num_gpus=opts.gpus_per_worker, max_retries=opts.retries)
    gate = _gate_actor(opts.max_inflight)
    options = template.to_dict()
    queue, pending = list(todo), {}
    failed = 0
    start = time.perf_counter()
    progress = Progress(TextColumn("photos"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("failed {task.fields[failed]}  running {task.fields[running]}  "
                                   "{task.fields[rate]:.1f}/min"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, disable=opts.quiet)
    interrupted = False
    stop = _StopOnSignal()  # a flag, not an exception: Ray's calls may be where the signal lands
    try:
        with progress, stop:
            bar = progress.add_task("batch", total=len(todo), failed=0, running=0, rate=0.0)
            while queue or pending:
                if stop.signalled:
                    raise KeyboardInterrupt
                while queue and len(pending) < opts.workers:
                    image = queue.pop(0)
                    ref = task.remote(str(image), str(opts.out / names[image]), options, threads, gate)
                    pending[ref] = image
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in done:
                    image = pending.pop(ref)
                    try:
                        row = Row(**ray.get(ref))
                    except Exception as exc:  # the worker died more often than --retries allows
                        kind = type(exc).__name__
                        row = Row(str(image), str(opts.out / names[image]), "failed",
                                  f"the worker died {opts.retries + 1} times ({kind})")
                    rows[image] = row
                    failed += row.status not in DONE
                    console.print(f"  {row.status:<13} {Path(row.image).name}: {row.reason[:100]}")
                finished = len(todo) - len(queue) - len(pending)
                minutes = (time.perf_counter() - start) / 60
                progress.update(bar, completed=finished, failed=failed, running=len(pending),
                                rate=finished / minutes if minutes else 0.0)
    except KeyboardInterrupt:
        interrupted = True
        for ref in pending:
            ray.cancel(ref, force=True)
    finally:
        if started_ray:
            ray.shutdown()
    return interrupted


class _StopOnSignal:
    """SIGINT and SIGTERM set a flag the driver loop reads, between Ray calls."""

    def __init__(self) -> None:
        self.signalled = False
        self._previous: dict = {}

    def __enter__(self) -> _StopOnSignal:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._set)
        return self

    def _set(self, signum, frame) -> None:
        self.signalled = True

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _say(console, summary: Summary) -> None:
    from collections import Counter

    counts = Counter("skipped" if r.skipped else r.status for r in summary.rows)
    console.print(f"batch: {len(summary.rows)} photos in {summary.seconds:.0f} s: "
                  + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f"; {summary.csv}")
    for r in summary.rows:
        if r.status not in DONE:
            console.print(f"  {r.status}: {r.image}: {r.reason}")
    if summary.interrupted:
        left = sum(r.status == "not run" for r in summary.rows)
        console.print(f"interrupted: {left} photos left; run the same command again to go on")
