"""The run's trace: one JSON event per line in ``RUN_DIR/trace.jsonl``.

Everything the model saw, said and called, and every tool result, in order; images appear only as
``artifact://<sha256>``. The file is rewritten atomically after each event (it stays small), so a
run that dies at any point still leaves a complete, parseable trace of what happened until then.
``request_hash`` is what replay compares: the hash of a model request as recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.atomic import write_text_atomic

EVENT_TYPES = ("run_start", "llm_request", "llm_response", "tool_call", "tool_result", "artifact", "decision",
               "error", "run_end")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(request: dict) -> str:
    """sha256 of the recorded request (messages with artifact refs, tools, sampling settings)."""
    return hashlib.sha256(canonical(request).encode()).hexdigest()


class TraceWriter:
    def __init__(self, path: str | Path, on_event: Callable[[dict], None] | None = None):
        self.path = Path(path)
        self.events: list[dict] = []
        self.on_event = on_event

    def emit(self, node: str, type_: str, payload: dict) -> dict:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown trace event type {type_!r}")
        event = {"seq": len(self.events), "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                 "node": node, "type": type_, "payload": payload}
        json.dumps(event)  # fail here, not at replay time, if something unserialisable slipped in
        self.events.append(event)
        write_text_atomic(self.path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.events))
        if self.on_event is not None:
            self.on_event(event)
        return event


def read_trace(path: str | Path) -> list[dict]:
    """Events of a trace file; ValueError with the line number when a line is not an event."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no trace here")
    events = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:{i}: not JSON ({exc.msg})") from None
        if not isinstance(e, dict) or e.get("type") not in EVENT_TYPES or "payload" not in e:
            raise ValueError(f"{p}:{i}: not a trace event")
        events.append(e)
    return events
