"""The run's trace: one JSON event per line in ``RUN_DIR/trace.jsonl``.

Everything the model saw, said and called, and every tool result, in order; images appear only as
``artifact://<sha256>``. Each event is appended as one line and flushed at once, so a run that dies at
any point still leaves a parseable trace of what happened until then (``read_trace`` ignores a last line
cut mid-write). The file is synced to disk at layer boundaries (an ``inpaint`` result: a layer was
peeled), after an ``error`` and after ``run_end``, and when the writer is closed.
``request_hash`` is what replay compares: the hash of a model request as recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EVENT_TYPES = ("run_start", "llm_request", "llm_response", "tool_call", "tool_result", "artifact", "decision",
               "error", "run_end")


class TraceError(ValueError):
    """A trace file that cannot be read. A ValueError, so callers (and the CLI's one-line error) that catch
    ValueError keep working; its own type lets tests tell a refused file from a bug in the reader."""


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(request: dict) -> str:
    """sha256 of the recorded request (messages with artifact refs, tools, sampling settings)."""
    return hashlib.sha256(canonical(request).encode()).hexdigest()


def _syncs_after(event: dict) -> bool:
    """Layer boundaries and endings: where the trace is worth an fsync."""
    t = event["type"]
    return t in ("run_end", "error") or (t == "tool_result" and event["payload"].get("name") == "inpaint")


class TraceWriter:
    """Appends events to ``path``; use as a context manager or ``close()``.

    ``mode``: ``"w"`` creates or truncates; ``"x"`` creates and fails when the file exists (a run folder
    another run is writing into); ``"a"`` continues an existing trace (``resume``): its events are read
    back, a last line cut mid-write is dropped, and ``seq`` goes on from there."""

    def __init__(self, path: str | Path, on_event: Callable[[dict], None] | None = None, mode: str = "w"):
        self.path = Path(path)
        self.events: list[dict] = []
        self.on_event = on_event
        if mode == "a":
            self.events = read_trace(self.path)
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                whole = data[: data.rfind(b"\n") + 1]
                with open(self.path, "r+b") as fh:
                    if len(self.events) > whole.count(b"\n"):  # the unterminated last line was a whole event
                        fh.seek(0, os.SEEK_END)
                        fh.write(b"\n")
                    else:  # cut mid-write: dropped, as read_trace dropped it
                        fh.truncate(len(whole))
        self._file = open(self.path, mode, encoding="utf-8", newline="\n")  # noqa: SIM115 (closed by close())
        self._unsynced = False

    def emit(self, node: str, type_: str, payload: dict) -> dict:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown trace event type {type_!r}")
        if self._file.closed:
            raise ValueError(f"{self.path}: trace already closed")
        event = {"seq": len(self.events), "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                 "node": node, "type": type_, "payload": payload}
        # serialise first: something unserialisable fails here, not at replay time, and never half-written
        line = json.dumps(event, ensure_ascii=False) + "\n"
        self.events.append(event)
        self._file.write(line)
        self._file.flush()
        self._unsynced = True
        if _syncs_after(event):
            self.sync()
        if self.on_event is not None:
            self.on_event(event)
        return event

    def sync(self) -> None:
        """Flush and fsync what was written so far (nothing to do when already synced)."""
        if self._file.closed:
            return
        self._file.flush()
        if self._unsynced:
            os.fsync(self._file.fileno())
            self._unsynced = False

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _not_json(exc: Exception) -> str:
    """Why a line did not decode. Besides JSONDecodeError and UnicodeDecodeError, the json module raises a
    plain ValueError for an integer past Python's digit limit and RecursionError for deep nesting."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return "nested too deeply" if isinstance(exc, RecursionError) else "a number with too many digits"


def read_trace(path: str | Path) -> list[dict]:
    """Events of a trace file; TraceError with the line number when a line is not an event.

    A last line without its newline that does not parse (a run killed mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{p}: no trace here")
    try:
        data = p.read_bytes()
    except OSError as exc:  # a folder, no permission: still the reader's one-line error
        raise TraceError(f"{p}: cannot read ({exc.strerror or exc})") from None
    lines = data.split(b"\n")  # not str.splitlines(): U+2028 and friends may sit inside strings
    last = len(lines)  # the piece after the final newline ("" for a complete file)
    events = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            e = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # see _not_json
            if i == last:
                break  # cut mid-write
            raise TraceError(f"{p}:{i}: not JSON ({_not_json(exc)})") from None
        if not isinstance(e, dict) or e.get("type") not in EVENT_TYPES or "payload" not in e:
            raise TraceError(f"{p}:{i}: not a trace event")
        events.append(e)
    return events
