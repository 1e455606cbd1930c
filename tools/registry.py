"""Picking a backend from a tool role's registry (ordered best first)."""

from __future__ import annotations


def first_available(registry: dict) -> tuple[type | None, str | None]:
    """The first backend that works here (None when none does), and a note naming what was passed
    over and why: a fallback is always reported, never silent."""
    skipped: list[str] = []
    for name, backend in registry.items():
        ok, why = backend.available()
        if ok:
            return backend, (f"{'; '.join(skipped)}; used {name}" if skipped else None)
        skipped.append(f"{name} unavailable ({why})")
    return None, "; ".join(skipped) or None
