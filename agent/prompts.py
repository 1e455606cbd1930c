"""Prompt templates: the text files in ``prompts/``, installed as the package data ``agent.prompt_files``,
hashed into every run's manifest so a run records exactly which wording the model was given."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

NAMES = ("system", "observe", "nudge", "fork_hint")


def _read(name: str) -> str:
    try:
        return (resources.files("agent.prompt_files") / f"{name}.txt").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        # running from a checkout without installing: the templates sit in ../prompts
        return (Path(__file__).resolve().parents[1] / "prompts" / f"{name}.txt").read_text(encoding="utf-8")


@cache
def template(name: str) -> str:
    if name not in NAMES:
        raise KeyError(f"no prompt {name!r}")
    return _read(name)


def render(name: str, **values: object) -> str:
    return template(name).format(**values)


def hashes() -> dict[str, str]:
    return {n: hashlib.sha256(template(n).encode()).hexdigest() for n in NAMES}
