"""Fault injection: many short runs through the real CLI against a local OpenAI-compatible server that
misbehaves in randomly drawn ways, and a count of how each run ended.

    python bench/faults.py [--runs 60] [--seed 0]

Each run peels one object (segment, inpaint, finish) from a small photo, with tiny path and step
counts. Faults are drawn per run and put into the server's script where they hit: connection drops,
answers slower than --timeout, HTTP 429/500/503 (once, or until the retries run out), bodies that are
not JSON or JSON cut short, truncated tool calls, and a model that repeats a failing call. Every
fault's expected ending is known (finished after retries, a clean error, or tool_failures), so a
run whose manifest says otherwise is counted. Must be 0: tracebacks, unreadable or unfinished
traces, status mismatches.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT / "tests"))

from agent_script import coffee_photo, last_result
from scripted_server import ScriptedServer, content_tool_call, tool_calls_message

from agent.cli import main
from agent.trace import read_trace

TIMEOUT = 2.0  # --timeout of every run (a turn waits at most 3x this, retries included)
CUP = [273, 29, 703, 643]


def segment(b):
    return tool_calls_message("segment", {"target": "cup", "keywords": ["cup"], "bbox_2d": CUP})


def inpaint(b):
    return tool_calls_message("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "cup"})


def finish(b):
    return tool_calls_message("finish", {"reason": "only the table is left"})


ANSWERS = [segment, inpaint, finish]


@dataclass
class Fault:
    kind: str
    items: list  # script items put in front of the answer they hit
    expect: str  # the manifest status the run must end with
    reason: str = ""  # for an error, what its reason must say


def draw(rng: random.Random) -> Fault:
    """One fault, and what it must lead to."""
    kind = rng.choice(["drop", "slow", "429", "500", "503", "500 x5", "slow x3", "not json", "cut json",
                       "truncated call", "repeated bad call", "none"])
    if kind == "drop":
        return Fault(kind, [{"drop": True}], "finished")
    if kind == "slow":
        return Fault(kind, [{"delay": 2 * TIMEOUT, "http_status": 500}], "finished")
    if kind in ("429", "500", "503"):
        return Fault(kind, [{"http_status": int(kind)}] * rng.randint(1, 2), "finished")
    if kind == "500 x5":
        return Fault(kind, [{"http_status": 500}] * 5, "error", "kept failing (HTTP 500): gave up after")
    if kind == "slow x3":
        return Fault(kind, [{"delay": 2 * TIMEOUT, "http_status": 500}] * 3, "error",
                     f"did not answer within --timeout {TIMEOUT:g} s")
    if kind == "not json":
        return Fault(kind, [{"raw": "<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"}],
                     "error", "answered with something that is not JSON: '<html><body>502 Bad Gateway")
    if kind == "cut json":
        return Fault(kind, [{"raw": '{"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assist'}],
                     "error", "not JSON")
    if kind == "truncated call":  # the call is cut mid-arguments: the model is told and answers again
        cut = content_tool_call("segment", {"target": "cup", "keywords": ["cup"], "bbox_2d": CUP})
        cut["content"] = cut["content"][: len(cut["content"]) // 2]
        return Fault(kind, [cut], "finished")
    if kind == "repeated bad call":
        bad = tool_calls_message("inpaint", {"mask_id": "f" * 64, "layer_name": "ghost"})
        return Fault(kind, [bad] * 3, "tool_failures")
    return Fault(kind, [], "finished")


def script_for(fault: Fault, at: int) -> list:
    answers = list(ANSWERS)
    if fault.expect == "tool_failures":
        return fault.items + answers
    return answers[:at] + fault.items + answers[at:]


def one_run(photo: Path, out: Path, fault: Fault, at: int) -> dict:
    with ScriptedServer(script_for(fault, at)) as srv:
        err = io.StringIO()
        start = time.perf_counter()
        try:
            with contextlib.redirect_stderr(err):
                code = main([str(photo), "--planner", "vlm", "--vlm-url", srv.url, "--out", str(out),
                             "--paths", "24", "--iters", "8", "--timeout", str(TIMEOUT), "--quiet"])
            traceback = None
        except BaseException as exc:  # what must never happen: anything escaping the CLI
            code, traceback = None, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
    row = {"fault": fault.kind, "at": at, "code": code, "seconds": seconds, "traceback": traceback,
           "stderr": err.getvalue().strip()}
    try:
        events = read_trace(out / "trace.jsonl")
        row["trace_ok"] = bool(events) and events[-1]["type"] == "run_end"
    except ValueError:
        row["trace_ok"] = False
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        row["status"], row["reason"] = manifest["status"], manifest["reason"]
    except (OSError, ValueError, KeyError):
        row["status"], row["reason"] = None, ""
    row["matches"] = row["status"] == fault.expect and fault.reason in row["reason"] and code == (
        1 if fault.expect == "error" else 0)
    if fault.expect == "error":  # under --quiet, one line that says why
        row["matches"] &= len(row["stderr"].splitlines()) == 1 and fault.reason in row["stderr"]
    return row


def run_bench(runs: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = coffee_photo(Path(tmp) / "coffee.png", 64)
        for i in range(runs):
            fault = draw(rng)
            row = one_run(photo, Path(tmp) / f"run-{i:03d}", fault, rng.randrange(len(ANSWERS)))
            rows.append(row)
            print(f"{i:3d} {fault.kind:<18} at answer {row['at']}  exit {row['code']}  {row['status'] or '-':<14} "
                  f"{row['seconds']:5.1f} s  {'ok' if row['matches'] and row['trace_ok'] else 'MISMATCH'}  "
                  f"{row['reason'][:70]}", flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    n = len(rows)
    print()
    print(f"runs                                  {n}")
    print(f"clean successes (status finished)     {sum(r['status'] == 'finished' and r['matches'] for r in rows)}")
    print(f"clean failures (error, tool_failures) {sum(r['status'] != 'finished' and r['matches'] for r in rows)}")
    print(f"tracebacks                            {sum(r['traceback'] is not None for r in rows)}  (must be 0)")
    print(f"incomplete or unreadable traces       {sum(not r['trace_ok'] for r in rows)}  (must be 0)")
    print(f"status not what happened             {sum(not r['matches'] for r in rows)}  (must be 0)")
    kinds = Counter(r["fault"] for r in rows)
    print("faults drawn: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"longest run {max(r['seconds'] for r in rows):.1f} s, all runs {sum(r['seconds'] for r in rows):.0f} s")
    for r in rows:
        if r["traceback"] or not r["matches"] or not r["trace_ok"]:
            print(f"  problem: {r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    summary(run_bench(args.runs, args.seed))
