"""A whole scripted run (the local OpenAI-compatible server, the coffee script) with every model backend
selected: tiny random-weight GroundingDINO and SAM, and a tiny TorchScript LaMa, loaded the way users
have them. Random weights decide nothing useful; this is the plumbing end to end."""

from __future__ import annotations

import json

import pytest
from agent_script import coffee_photo, coffee_script, with_flux_redo
from scripted_server import ScriptedServer
from tiny_models import TinyLama, build_tiny_flux, build_tiny_grounding_dino, build_tiny_sam, script

from agent.context import RunOptions
from agent.run import run_peel
from agent.trace import read_trace
from tools import flux, grounding_dino, lama, sam
from tools.vectorize.options import VectorizeOptions

pytest.importorskip("transformers", reason="the [models] extra is not installed")


@pytest.mark.slow
def test_a_scripted_run_with_every_model_backend(tmp_path, monkeypatch):
    monkeypatch.setenv(grounding_dino.ENV, str(build_tiny_grounding_dino(tmp_path / "gdino" / "model")))
    monkeypatch.setenv(sam.ENV, str(build_tiny_sam(tmp_path / "sam")))
    monkeypatch.setenv(lama.ENV, str(script(TinyLama(), tmp_path / "big-lama.pt")))
    monkeypatch.setenv(flux.ENV, str(build_tiny_flux(tmp_path / "flux")))
    photo = coffee_photo(tmp_path / "coffee.png")
    # the cup's fill is redone: it is cut first, and random masks may leave later ones nothing new to cut
    with ScriptedServer(with_flux_redo(coffee_script(), at=3, layer="cup")) as srv:
        report = run_peel(RunOptions(image=photo, out=tmp_path / "run", planner="vlm", vlm_url=srv.url, quiet=True,
                                     vectorize=VectorizeOptions(paths=48, iters=10, device="cpu")))
    assert report.status == "finished", report.reason
    m = json.loads((report.run_dir / "manifest.json").read_text())
    assert m["backends"]["detect"] == ["groundingdino"] and m["backends"]["segment"] == ["sam"]
    assert m["backends"]["inpaint"] == ["flux (from lama)", "lama"]  # the cup's fill redone with FLUX
    assert not [n for n in m["notes"] if "unavailable" in n and "sam3 unavailable" not in n]  # nothing else fell back
    assert all(m["timings_s"][f"load:{name}"] > 0 for name in ("groundingdino", "sam", "lama", "flux"))
    # random masks overlap: a later object may be refused as the fill of earlier holes, and the run goes on
    assert (report.run_dir / "result.svg").exists()
    assert len(list((report.run_dir / "layers").iterdir())) == len(m["layers"]) >= 3
    results = [e["payload"]["result"] for e in read_trace(report.run_dir / "trace.jsonl")
               if e["type"] == "tool_result" and e["payload"]["name"] == "segment"]
    results = [r for r in results if "mask_id" in r]
    assert results and all(r["backend"] == "sam" and r["box_from"].startswith("groundingdino ") for r in results)
