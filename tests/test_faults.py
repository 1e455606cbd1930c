"""A misbehaving model server and interruptions: every stop is clean, bounded in time, said in the
user's terms (under --quiet too), and leaves a readable trace, a manifest that says why and the layers
finished so far."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_script import coffee_photo, coffee_script, finish_called
from scripted_server import ScriptedServer, tool_calls_message

from agent.cli import main
from agent.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--paths", "64", "--iters", "15", "--quiet"]
SEGMENT_CUP = tool_calls_message("segment", {"target": "cup", "keywords": ["cup"], "bbox_2d": [273, 29, 703, 643]})


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return coffee_photo(tmp_path_factory.mktemp("photo") / "coffee.png")


def _run(photo: Path, out: Path, srv: ScriptedServer, *flags: str) -> int:
    return main([str(photo), "--planner", "vlm", "--vlm-url", srv.url, "--out", str(out), *FAST, *flags])


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _failed_in_one_line(capsys, message: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amodal-agent: error: run error: "), err
    assert message in lines[0], err
    return lines[0]


def test_a_body_that_is_not_json_is_quoted_to_the_user(photo, tmp_path, capsys):
    out = tmp_path / "run"
    with ScriptedServer([{"raw": "<html>oops</html>", "content_type": "text/html"}]) as srv:
        assert _run(photo, out, srv) == 1
    line = _failed_in_one_line(capsys, "answered with something that is not JSON: '<html>oops</html>'")
    assert "JSONDecodeError" not in line
    assert _manifest(out)["status"] == "error" and "not JSON" in _manifest(out)["reason"]
    assert read_trace(out / "trace.jsonl")[-1]["type"] == "run_end"


def test_json_without_a_message_and_a_cut_body(photo, tmp_path, capsys):
    with ScriptedServer([{"raw": '{"id": "x", "choices": []}'}]) as srv:
        assert _run(photo, tmp_path / "a", srv) == 1
    _failed_in_one_line(capsys, "answered JSON without choices[0].message")
    with ScriptedServer([{"raw": '{"id": "x", "choices": [{"index": 0, "mess'}]) as srv:
        assert _run(photo, tmp_path / "b", srv) == 1
    _failed_in_one_line(capsys, "not JSON")


def test_a_server_that_never_answers_costs_the_bounded_wait(photo, tmp_path, capsys):
    out = tmp_path / "run"
    with ScriptedServer([{"delay": 30, **SEGMENT_CUP}] * 5) as srv:
        start = time.perf_counter()
        assert _run(photo, out, srv, "--timeout", "0.5") == 1
        waited = time.perf_counter() - start
    assert waited < 10, f"three timeouts of 0.5 s, not {waited:.1f} s"
    _failed_in_one_line(capsys, "did not answer within --timeout 0.5 s: gave up after")
    assert "--timeout 0.5" in _manifest(out)["reason"]


def test_rate_limits_and_dropped_connections_are_retried(photo, tmp_path, monkeypatch):
    from agent_script import last_result

    monkeypatch.setattr("agent.vlm.time.sleep", lambda s: None)
    script = [{"http_status": 429}, {"drop": True}, SEGMENT_CUP,
              lambda b: tool_calls_message("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "cup"}),
              {"http_status": 503}, tool_calls_message("finish", {"reason": "done"})]
    out = tmp_path / "run"
    with ScriptedServer(script) as srv:
        assert _run(photo, out, srv) == 0
    responses = [e["payload"] for e in read_trace(out / "trace.jsonl") if e["type"] == "llm_response"]
    assert [r["attempts"] for r in responses] == [3, 1, 2]
    assert _manifest(out)["status"] == "finished" and len(_manifest(out)["layers"]) == 2


def test_a_model_that_repeats_a_failing_call_is_stopped(photo, tmp_path, capsys):
    bad = tool_calls_message("inpaint", {"mask_id": "0" * 64, "layer_name": "ghost"})
    out = tmp_path / "run"
    with ScriptedServer([bad] * 20) as srv:
        assert _run(photo, out, srv) == 0  # a clean stop: the layers so far (the background) are written
        served = srv.served
    m = _manifest(out)
    assert m["status"] == "tool_failures" and served == 3 and (out / "result.svg").exists()


def test_a_tool_backend_that_raises_is_a_failed_call_then_a_clean_stop(photo, tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("segmenter exploded\nsecond line")

    monkeypatch.setattr("tools.segment.GrabCutSegmenter.segment", boom)
    out = tmp_path / "run"
    with ScriptedServer([SEGMENT_CUP] * 5) as srv:
        assert _run(photo, out, srv, "--segmenter", "grabcut") == 0
        served = srv.served
    m = _manifest(out)
    assert m["status"] == "tool_failures" and served == 3 and (out / "result.svg").exists()
    said = "segment failed in its backend: RuntimeError: segmenter exploded"
    assert said in m["notes"]
    results = [e["payload"]["result"] for e in read_trace(out / "trace.jsonl") if e["type"] == "tool_result"]
    assert results == [{"error": said}] * 3, "the model reads what broke"


def test_out_of_gpu_memory_runs_the_tool_again_on_the_cpu(photo, tmp_path, monkeypatch):
    import torch

    from tools.segment import GrabCutSegmenter

    devices = []
    real_init, real_segment = GrabCutSegmenter.__init__, GrabCutSegmenter.segment

    def init(self, iterations=5, device="auto"):
        devices.append(device)
        self.device = device
        real_init(self, iterations, device)

    def segment(self, *args, **kwargs):
        if self.device != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_segment(self, *args, **kwargs)

    monkeypatch.setattr(GrabCutSegmenter, "__init__", init)
    monkeypatch.setattr(GrabCutSegmenter, "segment", segment)
    out = tmp_path / "run"
    with ScriptedServer([SEGMENT_CUP, tool_calls_message("finish", {"reason": "enough"})]) as srv:
        assert _run(photo, out, srv, "--segmenter", "grabcut", "--device", "auto") == 0
    assert devices == ["auto", "cpu"]
    m = _manifest(out)
    assert "segment: out of GPU memory (CUDA out of memory. Tried to allocate 2.00 GiB); ran it again on the CPU" \
        in m["notes"]
    result = next(e["payload"]["result"] for e in read_trace(out / "trace.jsonl") if e["type"] == "tool_result")
    assert "mask_id" in result and m["options"]["vectorize"]["device"] == "auto", "only that call moved"


@pytest.mark.slow
def test_sigterm_during_vectorization_stops_cleanly_with_exit_130(photo, tmp_path):
    """The signal arrives while finalize vectorizes (after the model's last turn): status interrupted,
    the trace ends with run_end, and the finished layers are on disk."""
    out = tmp_path / "run"
    with ScriptedServer(coffee_script()) as srv:
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", str(photo), "--planner", "vlm", "--vlm-url",
                                 srv.url, "--out", str(out), "--paths", "96", "--iters", "200", "--quiet"],
                                cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ})
        trace = out / "trace.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if finish_called(trace):
                break
            time.sleep(0.1)
        time.sleep(1.0)  # inside the vectorizing of the first layers
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("amodal-agent: error: run interrupted: ")
    m = _manifest(out)
    assert m["status"] == "interrupted"
    assert len(m["layers_so_far"]) == 4 and all((out / p).exists() for p in m["layers_so_far"])
    events = read_trace(out / "trace.jsonl")
    assert events[-1]["type"] == "run_end" and events[-1]["payload"]["status"] == "interrupted"


def test_two_runs_of_one_photo_never_share_a_folder(photo, tmp_path, monkeypatch):
    from agent.context import RunOptions
    from agent.run import RunSetupError, claim_run_dir
    from agent.trace import TraceWriter

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("agent.run.default_run_dir", lambda image: Path("runs") / f"{image.stem}-20261128-120000")
    first, second = (claim_run_dir(RunOptions(image=photo)) for _ in range(2))
    assert first != second and second.name == first.name + "-2" and first.is_dir() and second.is_dir()
    TraceWriter(first / "trace.jsonl", mode="x").close()
    with pytest.raises(FileExistsError):  # what run_peel turns into "another run is writing into this folder"
        TraceWriter(first / "trace.jsonl", mode="x")
    with pytest.raises(RunSetupError, match="folder exists and is not empty"):
        claim_run_dir(RunOptions(image=photo, out=first))
