"""Fused elementwise stages of the renderer, an experiment for the GPU (off by default).

On a GPU a fitting step is bound by launching work: about 950 small operations, each a kernel
launch and a trip through the dispatcher, while the arithmetic takes a fraction of the wall time
(``bench/gpu_fit.py``). The renderer's bookkeeping is written as a few data-dependent steps
(``repeat_interleave``, ``nonzero``) between long runs of elementwise arithmetic on same-sized
arrays. Each such run is its own function marked ``@fusable``; when fusion is on, it is compiled
once with ``torch.compile`` (dynamic shapes, one graph, so a new size does not recompile) into a
few fused kernels, and the data-dependent steps stay in eager mode between them. Off, the functions
run as written, so results are the same either way up to floating-point reassociation.

Compiling costs tens of seconds once per process and a compiled call has its own overhead, so this
pays only where launches dominate (CUDA) and is measured there before it becomes a default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)

_enabled = False


RECOMPILE_LIMIT = 64  # variants per stage: dtype, flat or gradient fills, fill rule, with or without slopes


def set_fusion(enabled: bool) -> None:
    """Turn compiled stages on or off for this process (``bench/gpu_fit.py --modes``)."""
    global _enabled
    _enabled = bool(enabled)
    if _enabled:
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)


def fusion_enabled() -> bool:
    return _enabled


def fusable(fn: F) -> F:
    """Run ``fn`` as written, or compiled into fused kernels while fusion is on."""
    compiled: Callable | None = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal compiled
        if not _enabled:
            return fn(*args, **kwargs)
        if compiled is None:
            compiled = torch.compile(fn, dynamic=True, fullgraph=True)
        if not torch.is_grad_enabled():  # inside autograd functions: a stale requires_grad would recompile
            args = tuple(a.detach() if isinstance(a, torch.Tensor) and a.requires_grad else a for a in args)
        return compiled(*args, **kwargs)

    return call  # type: ignore[return-value]
