"""Where model weights are found on this machine: the Hugging Face cache, read offline.

Why a module of its own: every model backend looks in the same cache, and must read the cache
folder from the environment at call time (``huggingface_hub`` fixes it when first imported), so a
test or a user who sets ``HF_HUB_CACHE`` later is still obeyed. Nothing here downloads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def hf_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("HF_HOME", cache / "huggingface")) / "hub"


def cached_snapshot(repo: str, probe: str = "config.json") -> Path | None:
    """The local snapshot folder of ``repo``'s main revision when ``probe`` is in the cache, else None."""
    folder = hf_cache() / f"models--{repo.replace('/', '--')}"
    ref = folder / "refs" / "main"
    revisions = [ref.read_text().strip()] if ref.is_file() else []
    revisions += sorted(p.name for p in (folder / "snapshots").glob("*") if p.name not in revisions)
    for revision in revisions:
        if (folder / "snapshots" / revision / probe).is_file():
            return folder / "snapshots" / revision
    return None


def load_once(loader: Callable, *args) -> tuple[tuple, float]:
    """``loader(*args)`` through its ``functools.cache`` (its last value is the seconds loading took):
    the other values, and those seconds when this call did the loading, else 0 (for the manifest's
    timings, which count each load once)."""
    misses = loader.cache_info().misses
    *value, seconds = loader(*args)
    return tuple(value), seconds if loader.cache_info().misses > misses else 0.0
