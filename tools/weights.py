"""What every model backend shares: where its weights are on this machine (an env var, else the
Hugging Face cache, read offline), the one line that says how to get them, quiet loading through
transformers, and load times counted once.

Why a module of its own: the backends must agree on where they look, and must read the cache folder
from the environment at call time (``huggingface_hub`` fixes it when first imported), so a test or a
user who sets ``HF_HUB_CACHE`` later is still obeyed. Nothing here downloads.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import ClassVar

EXTRA = "pip install 'amodal-agent[models]'"


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


def locate_model(env: str, repos: tuple[str, ...], probe: str = "config.json") -> tuple[Path | None, str]:
    """A model folder as ``save_pretrained`` writes it (``probe`` names the file that marks one): ``env``,
    else the first of ``repos`` (best first) in the Hugging Face cache; and where it came from or where
    it was looked for."""
    explicit = os.environ.get(env)
    if explicit:
        path = Path(explicit).expanduser()
        if (path / probe).is_file():
            return path, f"{env}={explicit}"
        return None, f"{env}={explicit} is not a model folder (no {probe})"
    for repo in repos:
        snapshot = cached_snapshot(repo, probe)
        if snapshot is not None:
            return snapshot, f"{repo} in the Hugging Face cache"
    return None, f"looked in {env} (unset), {hf_cache()} for {', '.join(repos)}"


def model_missing(what: str, env: str, repos: tuple[str, ...], path: Path | None, where: str,
                  needs: tuple[str, ...] = ("transformers",)) -> str | None:
    """Why a model cannot run here (a package of ``needs`` missing, or no weights), in one line that
    says what to do (None when it can). Default folders are left to ``doctor``: this line reaches the
    model and the trace."""
    for package in needs:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed: {EXTRA}"
    if path is not None:
        return None
    if where.startswith("looked in"):
        return f"no {what} weights: huggingface-cli download {repos[0]}, or set {env} to a model folder"
    return f"no {what} weights: {where}"


@contextlib.contextmanager
def quiet_transformers():
    """transformers' progress bars and its note that an image processor runs without torchvision are
    not the user's business during a run."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def load_pretrained(model_class: str, processor_class: str, path: str, device: str):
    """A transformers model (on ``device``, in eval mode) and its processor from a local folder, and
    the seconds that took; quietly."""
    start = time.perf_counter()
    with quiet_transformers():
        import transformers

        model = getattr(transformers, model_class).from_pretrained(path).to(device).eval()
        processor = getattr(transformers, processor_class).from_pretrained(path)
    return model, processor, time.perf_counter() - start


class ModelBackend:
    """What every backend that runs a model shares: the device it runs on, the model module it calls
    (``tools.<module>`` with ``locate()``, ``missing(path, where)`` and a cached ``load(path,
    device)``), its availability from those, and the time loading took when this instance loaded it."""

    name: ClassVar[str]
    module: ClassVar[str]

    def __init__(self, device: str = "auto") -> None:
        from .vectorize.alv import resolve_device

        self.device = str(resolve_device(device))
        self.load_seconds = 0.0  # for the manifest's timings: each load counted once, by whoever did it

    @classmethod
    def model(cls) -> ModuleType:
        return importlib.import_module(f"{__package__}.{cls.module}")

    @classmethod
    def available(cls) -> tuple[bool, str]:
        path, where = cls.model().locate()
        why = cls.model().missing(path, where)
        return (False, why) if why else (True, where)

    @classmethod
    def searched(cls) -> str:
        """Where the weights came from, or where they were looked for (``doctor`` shows it)."""
        return cls.model().locate()[1]

    def loaded(self) -> tuple:
        """The loaded model's parts (once per process and device), or a ValueError that says what to do."""
        model = self.model()
        path, where = model.locate()
        why = model.missing(path, where)
        if why:
            raise ValueError(f"{self.name} is not available: {why}")
        parts, seconds = load_once(model.load, str(path), self.device)
        self.load_seconds += seconds
        return parts
