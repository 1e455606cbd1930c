"""Fused elementwise stages of the renderer (``--fused``; off by default).

On a GPU a fitting step is bound by launching work: about 950 small operations, each a kernel
launch and a trip through the dispatcher, while the arithmetic takes a fraction of the wall time
(``bench/gpu_fit.py``). The renderer's bookkeeping is written as a few data-dependent steps
(``repeat_interleave``, ``nonzero``) between long runs of elementwise arithmetic on same-sized
arrays. Each such run is its own function marked ``@fusable``; when fusion is on, it is compiled
once with ``torch.compile`` (dynamic shapes, one graph, so a new size does not recompile) into a
few fused kernels, and the data-dependent steps stay in eager mode between them. Off, the functions
run as written, so results are the same either way up to floating-point reassociation.

Compiling costs seconds once per process (8-16 s on two cores with torch's on-disk cache warm, 46 s
with it empty) and a compiled call has its own overhead. On the CPU, where one stage compiled slower
than eager and stays eager (``cpu=False``), fits took 21-29% less time on the report set at the same
fidelity (``bench/results/fit-ab-fused-report-cpu.txt``).
A run turns it on with ``VectorizeOptions.fused`` (``--fused``); off by default, because the compile
needs a C++ compiler (CPU) or Triton (CUDA) and only pays back over a long fit or many.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)

_enabled = False
_all_stages = False
_ready: set[str] = set()  # devices where the stages compiled (``using``)


RECOMPILE_LIMIT = 64  # variants per stage: dtype, flat or gradient fills, fill rule, with or without slopes


def set_fusion(enabled: bool, all_stages: bool = False) -> None:
    """Turn compiled stages on or off for this process (``bench/gpu_fit.py --modes``);
    ``all_stages`` also compiles those marked slower compiled on the CPU (for tests)."""
    global _enabled, _all_stages
    _enabled, _all_stages = bool(enabled), bool(all_stages)
    if _enabled:
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)


def fusion_enabled() -> bool:
    return _enabled


def fusable(fn: F | None = None, *, cpu: bool = True):
    """Run ``fn`` as written, or compiled into fused kernels while fusion is on. ``cpu=False``: not
    on the CPU, where the compiled stage measured slower than the eager one."""
    if fn is None:
        return functools.partial(fusable, cpu=cpu)
    compiled: Callable | None = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal compiled
        if not _enabled or (not cpu and not _all_stages and args[0].device.type == "cpu"):
            return fn(*args, **kwargs)
        if compiled is None:
            compiled = torch.compile(fn, dynamic=True, fullgraph=True)
        if not torch.is_grad_enabled():  # inside autograd functions: a stale requires_grad would recompile
            args = tuple(a.detach() if isinstance(a, torch.Tensor) and a.requires_grad else a for a in args)
        return compiled(*args, **kwargs)

    return call


def _warm_up(device: str) -> float:
    """Compile the stages a fit uses (a step with gradients and a render without) on a small random
    scene; returns the seconds it took. Sizes are dynamic, so other scenes reuse what this compiles."""
    from .render import render
    from .scenes import random_blobs

    t = time.perf_counter()
    points, colors = (x.to(device) for x in random_blobs(64, 48, 64, seed=0))
    points.requires_grad_(True)
    render(points, colors, 48, 64).sum().backward()
    with torch.no_grad():
        render(points, colors, 48, 64)
    return time.perf_counter() - t


def prepare(device: str = "cpu") -> float:
    """Compile the stages for ``device`` once per process, so no fit is the one that pays and a
    machine where ``torch.compile`` cannot work fails here, with a message a user can act on, not
    inside a fit's backward pass. Returns the seconds it took (0 when already done)."""
    if device in _ready:
        return 0.0
    before = (_enabled, _all_stages)
    set_fusion(True)
    try:
        seconds = _warm_up(device)
    except Exception as exc:  # inductor's failures have many types; all mean the same here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"fused: torch.compile does not work here (it needs a C++ compiler on the CPU, "
                         f"Triton on CUDA): {first[:200]}; run without --fused") from None
    finally:
        set_fusion(*before)
    _ready.add(device)
    return seconds


@contextlib.contextmanager
def using(enabled: bool, device: str = "cpu") -> Iterator[None]:
    """Fusion on (``prepare``d) or off inside the block, and as it was after."""
    if enabled:
        prepare(device)
    before = (_enabled, _all_stages)
    set_fusion(enabled)
    try:
        yield
    finally:
        set_fusion(*before)
