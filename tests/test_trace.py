"""The trace writer appends one flushed line per event and syncs at layer boundaries; the reader
tolerates a last line cut mid-write and names the line of anything else that is not an event."""

import json
import os

import pytest

import agent.trace as trace_mod
from agent.trace import TraceWriter, read_trace


def _peel_events(w: TraceWriter) -> None:
    """A small run: two layers peeled, one error, the end."""
    w.emit("run", "run_start", {"image": "x.png"})
    w.emit("observe", "llm_request", {"hash": "a"})
    w.emit("act", "tool_call", {"id": "1", "name": "segment", "arguments": {}})
    w.emit("act", "tool_result", {"id": "1", "name": "segment", "result": {"ok": True}})
    w.emit("act", "tool_result", {"id": "2", "name": "inpaint", "result": {"ok": True}})
    w.emit("act", "decision", {"text": "next"})
    w.emit("act", "tool_result", {"id": "3", "name": "inpaint", "result": {"ok": True}})
    w.emit("act", "error", {"message": "boom"})
    w.emit("run", "run_end", {"status": "finished"})


def test_n_events_give_n_lines_that_read_back(tmp_path):
    path = tmp_path / "trace.jsonl"
    seen = []
    with TraceWriter(path, on_event=seen.append) as w:
        for i in range(50):
            w.emit("n", "decision", {"i": i, "text": "a\u2028b\x85c é"})  # line separators inside strings
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 51 and lines[-1] == b""
    events = read_trace(path)
    assert events == w.events == seen
    assert [e["seq"] for e in events] == list(range(50))
    assert events[7]["payload"] == {"i": 7, "text": "a\u2028b\x85c é"}


def test_the_file_is_readable_after_each_emit_without_close(tmp_path):
    path = tmp_path / "trace.jsonl"
    w = TraceWriter(path)
    assert path.exists() and read_trace(path) == []
    for i in range(5):
        w.emit("n", "decision", {"i": i})
        assert [e["payload"]["i"] for e in read_trace(path)] == list(range(i + 1))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.emit("n", "decision", {})


def test_construction_truncates_an_existing_file(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text("old junk\n")
    TraceWriter(path).close()
    assert path.read_text() == ""


def test_unknown_and_unserialisable_events_are_refused_and_leave_no_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    with TraceWriter(path) as w:
        w.emit("n", "decision", {"i": 0})
        with pytest.raises(ValueError, match="unknown trace event type"):
            w.emit("n", "nonsense", {})
        with pytest.raises(TypeError):
            w.emit("n", "decision", {"x": object()})
        w.emit("n", "decision", {"i": 1})
    assert [(e["seq"], e["payload"]["i"]) for e in read_trace(path)] == [(0, 0), (1, 1)]


def test_a_last_line_cut_mid_write_is_ignored(tmp_path):
    path = tmp_path / "trace.jsonl"
    with TraceWriter(path) as w:
        for i in range(3):
            w.emit("n", "decision", {"i": i, "text": "café"})
    full = path.read_bytes()
    third = full.rindex(b"{")
    for cut in (third + 1, len(full) - 10, len(full) - 5):  # inside the JSON, and inside the two-byte "é"
        path.write_bytes(full[:cut])
        assert [e["payload"]["i"] for e in read_trace(path)] == [0, 1]
    path.write_bytes(full[:-1])  # complete, only the final newline is missing
    assert len(read_trace(path)) == 3


def test_a_bad_middle_line_raises_with_its_line_number(tmp_path):
    path = tmp_path / "trace.jsonl"
    with TraceWriter(path) as w:
        for i in range(3):
            w.emit("n", "decision", {"i": i})
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1][:-5], lines[2]]))  # the last line lacks its newline too
    with pytest.raises(ValueError, match=r"trace\.jsonl:2: not JSON"):
        read_trace(path)
    path.write_text("\n".join([lines[0], json.dumps({"type": "nope", "payload": {}}), lines[2]]) + "\n")
    with pytest.raises(ValueError, match=r"trace\.jsonl:2: not a trace event"):
        read_trace(path)
    with pytest.raises(ValueError, match="no trace here"):
        read_trace(tmp_path / "missing.jsonl")


def test_each_event_is_written_once_to_a_file_opened_once(tmp_path, monkeypatch):
    """Appending: the bytes written over a run equal the final file size (rewriting would be quadratic)."""
    opened, written = [], []

    class Counting:
        def __init__(self, f):
            self._f = f

        def write(self, s):
            written.append(len(s.encode("utf-8")))
            return self._f.write(s)

        def __getattr__(self, name):
            return getattr(self._f, name)

    def counting_open(*args, **kwargs):
        opened.append(args[0])
        return Counting(open(*args, **kwargs))

    monkeypatch.setattr(trace_mod, "open", counting_open, raising=False)
    path = tmp_path / "trace.jsonl"
    with TraceWriter(path) as w:
        for i in range(200):
            w.emit("n", "decision", {"i": i, "pad": "x" * 100})
    assert opened == [path]
    assert sum(written) == path.stat().st_size
    assert len(read_trace(path)) == 200


def test_fsync_at_layer_boundaries_errors_and_the_end_only(tmp_path, monkeypatch):
    synced_after = []
    real_fsync = os.fsync
    path = tmp_path / "trace.jsonl"

    def counting_fsync(fd):
        synced_after.append(len(read_trace(path)))  # how many events were on disk when it synced
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    with TraceWriter(path) as w:
        _peel_events(w)
        types = [(e["type"], e["payload"].get("name")) for e in w.events]
    # after the two inpaint results (events 5 and 7), the error (8) and run_end (9); closing adds nothing
    assert synced_after == [5, 7, 8, 9], types
    w.sync()
    assert synced_after == [5, 7, 8, 9]


def test_a_continued_trace_goes_on_with_seq_and_drops_a_cut_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    with TraceWriter(path) as w:
        w.emit("run", "run_start", {"n": 0})
        w.emit("plan", "decision", {"text": "one"})
    with open(path, "ab") as fh:
        fh.write(b'{"seq": 2, "ts": "x", "node": "plan", "type": "deci')  # killed mid-write
    with TraceWriter(path, mode="a") as w:
        w.emit("run", "decision", {"text": "resumed"})
    events = read_trace(path)
    assert [e["seq"] for e in events] == [0, 1, 2] and events[2]["payload"] == {"text": "resumed"}
    # a last event written whole but without its newline is kept, and the next one goes on a new line
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    with TraceWriter(path, mode="a") as w:
        w.emit("run", "run_end", {"status": "finished"})
    assert [e["seq"] for e in read_trace(path)] == [0, 1, 2, 3]
