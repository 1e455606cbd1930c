"""Resume a run killed in the middle of vectorization, and fork a run at a model turn with a new hint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_script import coffee_photo, coffee_script, finish_called
from scripted_server import ScriptedServer

from agent.cli import main
from agent.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--paths", "96", "--iters", "120", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return coffee_photo(tmp_path_factory.mktemp("photo") / "coffee.png")


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _cli(photo: Path, out: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent.cli", str(photo), "--planner", "vlm", "--vlm-url", url,
                             "--out", str(out), *FLAGS], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _layers(run: Path) -> list[tuple[str, str]]:
    return [(e["name"], e["layer_id"]) for e in _manifest(run)["layers"]]


@pytest.mark.slow
def test_sigterm_during_vectorization_then_resume_gives_the_same_result(photo, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    with ScriptedServer(coffee_script()) as srv:
        proc = _cli(photo, whole, srv.url)
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    with ScriptedServer(coffee_script()) as srv:
        proc = _cli(photo, cut, srv.url)
        deadline = time.time() + 120
        while time.time() < deadline and not finish_called(cut / "trace.jsonl"):
            time.sleep(0.1)
        time.sleep(1.0)  # finalize is vectorizing the layers now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    assert _manifest(cut)["status"] == "interrupted" and not (cut / "result.svg").exists()
    before = len(read_trace(cut / "trace.jsonl"))

    with ScriptedServer([]) as srv:  # only finalize is left: the model must not be asked anything
        assert main(["resume", str(cut), "--vlm-url", srv.url, "--quiet"]) == 0
        assert srv.requests == []
    m = _manifest(cut)
    assert m["status"] == "finished" and m["resumes"] == [{"after_turn": 10, "next": ["finalize"]}]
    assert _layers(cut) == _layers(whole), "the same layers (artifact hashes) as the run never stopped"
    assert (cut / "result.svg").read_bytes() == (whole / "result.svg").read_bytes()
    events = read_trace(cut / "trace.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events))), "one trace, seq going on"
    assert any(e["payload"].get("text", "").startswith("resumed: step finalize") for e in events[before:])
    assert events[-1]["type"] == "run_end" and events[-1]["payload"]["status"] == "finished"

    assert main(["resume", str(cut), "--quiet"]) == 2, "a finished run has nothing to resume"


@pytest.mark.slow
def test_fork_at_turn_4_with_a_hint(photo, tmp_path, capsys):
    parent = tmp_path / "parent"
    with ScriptedServer(coffee_script()) as srv:
        assert main([str(photo), "--planner", "vlm", "--vlm-url", srv.url, "--out", str(parent), *FLAGS]) == 0
        parent_requests = list(srv.requests)
    fork = tmp_path / "fork"
    hint = "keep the spoon with the saucer"
    with ScriptedServer(coffee_script()[3:]) as srv:  # the answers from turn 4 on
        assert main(["resume", str(parent), "--from-turn", "4", "--hint", hint, "--out", str(fork),
                     "--vlm-url", srv.url, "--quiet"]) == 0
        requests = list(srv.requests)
    assert len(requests) == len(parent_requests) - 3, "turns 1-3 came from the checkpoint, not the server"
    # the server's first request is turn 4's: the parent's turn-4 request word for word, then the hint
    assert requests[0]["messages"][:-1] == parent_requests[3]["messages"]
    assert hint in requests[0]["messages"][-1]["content"]
    for body in requests:
        texts = [m["content"] for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], str)]
        assert any(hint in t for t in texts), "the hint reaches the model from turn 4 on"
    assert not any(hint in json.dumps(b) for b in parent_requests)
    assert [m["role"] for m in requests[0]["messages"]][:3] == ["system", "user", "assistant"]
    parent_layers, fork_layers = dict(_layers(parent)), dict(_layers(fork))
    assert fork_layers["cup"] == parent_layers["cup"], "the layer peeled before the fork is reused"
    m = _manifest(fork)
    assert m["status"] == "finished" and m["fork_of"]["turn"] == 4 and m["fork_of"]["run"] == str(parent)
    assert hint in m["hints"]
    start = read_trace(fork / "trace.jsonl")[0]
    assert start["type"] == "run_start" and start["payload"]["fork_of"]["hints"] == [hint]
    assert main(["replay", str(fork), "--quiet"]) == 0

    assert main(["resume", str(parent), "--from-turn", "40", "--out", str(tmp_path / "nope")]) == 2
    assert "the run has model turns 1..10" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()
