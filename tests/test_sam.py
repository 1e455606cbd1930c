"""The SAM backend through the path its users take (a model folder in the env var, or the Hugging Face
cache read offline), on a tiny random-weight SAM the test builds from transformers' configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_models import SAM_SIDE, build_tiny_sam, disc_photo, heuristic_run

from agent.cli import main
from tools import sam
from tools.segment import SEGMENTERS, GrabCutSegmenter, SamSegmenter, box_from_relative, choose_segmenter

transformers = pytest.importorskip("transformers", reason="the [models] extra is not installed")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


@pytest.fixture
def tiny(tiny_folder, monkeypatch) -> Path:
    monkeypatch.setenv(sam.ENV, str(tiny_folder))
    return tiny_folder


def test_sam_masks_the_box_through_the_env_var(tiny):
    assert SamSegmenter.available() == (True, f"{sam.ENV}={tiny}")
    backend, note = choose_segmenter()  # the method's mask model comes first where SAM 3 does not run
    assert backend is SamSegmenter and note.startswith("sam3 unavailable (") and note.endswith("; used sam")
    img = disc_photo()
    res = SamSegmenter(device="cpu").segment(img, (10, 8, 40, 37))
    assert res.mask.shape == img.shape[:2] and res.mask.dtype == bool and res.mask.any()
    # random weights draw anything, but the shared clean-up keeps one object around the box's middle
    # (or, when SAM finds nothing, the ellipse inscribed in the box, and says so)
    assert (res.note is None and not res.guessed) or (res.note.startswith("SAM found no object in the box")
                                                      and res.guessed)


def test_the_box_reaches_sam_in_its_input_pixels(tiny, monkeypatch):
    """A Qwen box (0..1000) becomes a pixel box on the canvas, and SAM's processor rescales it to the
    model's input (longest side 64 here) exactly as it rescales the image."""
    img = disc_photo(45, 61)
    box = box_from_relative([164, 178, 656, 822], 61, 45)
    assert box == (10, 8, 41, 37)
    model, processor, _ = sam.load(str(tiny), "cpu")
    seen = {}
    forward = type(model).forward

    def spy(self, *args, **kwargs):
        seen["boxes"] = kwargs["input_boxes"].clone()
        seen["pixels"] = tuple(kwargs["pixel_values"].shape)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    mask, score = sam.predict(model, processor, img, box, "cpu")
    scale = SAM_SIDE / 61
    assert seen["pixels"] == (1, 3, SAM_SIDE, SAM_SIDE)
    assert torch.allclose(seen["boxes"][0, 0].float(), torch.tensor(box, dtype=torch.float32) * scale, atol=0.5)
    assert mask.shape == (45, 61) and isinstance(score, float)


def test_points_reach_sam_as_clicks_beside_the_box(tiny, monkeypatch):
    """The model's points go to SAM as positive clicks and its exclude_points as negative ones, in the
    same input pixels as the box, one prompt with the box."""
    img = disc_photo(45, 61)
    model, _, _ = sam.load(str(tiny), "cpu")
    seen = {}
    forward = type(model).forward

    def spy(self, *args, **kwargs):
        seen["points"], seen["labels"] = kwargs["input_points"].clone(), kwargs["input_labels"].clone()
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    res = SamSegmenter(device="cpu").segment(img, (10, 8, 41, 37), points=[(20.0, 20.0), (30.5, 25.0)],
                                             exclude=[(12.0, 30.0)])
    scale = SAM_SIDE / 61
    assert seen["points"].shape == (1, 1, 3, 2) and seen["labels"].tolist() == [[[1, 1, 0]]]
    assert torch.allclose(seen["points"][0, 0].float(),
                          torch.tensor([[20.0, 20.0], [30.5, 25.0], [12.0, 30.0]]) * scale, atol=0.5)
    assert res.mask.shape == (45, 61) and res.mask.any()


def test_sam_is_loaded_once_and_found_offline_in_the_hf_cache(tiny_folder, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = cache / "models--facebook--sam-vit-base" / "snapshots" / "0123abcd"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(tiny_folder, target_is_directory=True)
    (cache / "models--facebook--sam-vit-base" / "refs").mkdir()
    (cache / "models--facebook--sam-vit-base" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sam.locate() == (snapshot, "facebook/sam-vit-base in the Hugging Face cache")
    seg = SEGMENTERS["sam"](device="cpu")
    for _ in range(3):
        seg.segment(disc_photo(), (10, 8, 40, 37))
    assert sam.load.cache_info().misses == 1 and sam.load.cache_info().hits == 2


def test_without_weights_grabcut_runs_and_the_user_is_told(tmp_path, monkeypatch):
    ok, why = SamSegmenter.available()
    assert not ok and why.startswith("no SAM weights: huggingface-cli download facebook/sam-vit-huge")
    backend, note = choose_segmenter()
    assert backend is GrabCutSegmenter and note.startswith("sam3 unavailable (no SAM 3 weights: ")
    assert note.endswith(f"; sam unavailable ({why}); used grabcut")
    monkeypatch.setenv(sam.ENV, str(tmp_path))
    assert SamSegmenter.available() == (False, f"no SAM weights: {sam.ENV}={tmp_path} is not a model folder "
                                               "(no config.json)")
    with pytest.raises(ValueError, match=r"^sam is not available: no SAM weights"):
        SamSegmenter().segment(disc_photo(), (10, 8, 40, 37))


def test_a_run_uses_sam_and_says_so(tiny, tmp_path):
    code, manifest, out = heuristic_run(tmp_path, "--max-layers", "2")
    # random weights mask anything, so the heuristic planner may peel on to the layer limit
    assert code == 0 and manifest["status"] in ("finished", "layer_limit") and (out / "result.svg").exists()
    assert manifest["backends"]["segment"] == ["sam"]
    # the best backend that runs here ran; SAM 3's absence is said
    notes = [note for note in manifest["notes"] if note.startswith("segment:")]
    assert all(note.startswith("segment: sam3 unavailable") for note in notes)
    assert manifest["timings_s"]["tool:segment"] > manifest["timings_s"]["load:sam"] > 0  # loaded once


def test_the_base_install_never_imports_transformers(tmp_path):
    """Without weights, nothing in a run or in doctor loads transformers (the base install has none)."""
    code = (
        "import sys, json\n"
        "from agent.cli import main\n"
        "main(['doctor', '--vlm-url', 'http://127.0.0.1:9/v1', '--json'])\n"
        "from tools.segment import choose_segmenter\n"
        "choose_segmenter()\n"
        "assert 'transformers' not in sys.modules and 'diffusers' not in sys.modules, 'transformers was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != sam.ENV}
    env |= {"HF_HUB_CACHE": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_named_segmenter_is_used_or_the_run_stops_with_one_line(tiny, tmp_path, capsys, monkeypatch):
    photo = tmp_path / "photo.png"
    Image.fromarray(disc_photo(48, 64)).save(photo)
    out = tmp_path / "run"
    assert main([str(photo), "--planner", "heuristic", "--segmenter", "grabcut", "--out", str(out), "--paths", "16",
                 "--iters", "5", "--max-layers", "1", "--quiet", "--device", "cpu"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backends"]["segment"] == ["grabcut"] and manifest["options"]["segmenter"] == "grabcut"
    assert not any(note.startswith("segment:") for note in manifest["notes"])  # asked for, so no fallback to report
    monkeypatch.delenv(sam.ENV)
    capsys.readouterr()
    assert main([str(photo), "--segmenter", "sam", "--out", str(tmp_path / "no"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("amodal-agent: error: --segmenter: segmenter sam is not available: no SAM weights: "
                   "huggingface-cli download facebook/sam-vit-huge, or set AMODAL_SAM_MODEL to a model folder")
    assert not (tmp_path / "no").exists()
    assert main([str(photo), "--segmenter", "sam3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal-agent: error: --segmenter: segmenter sam3 is not available: no SAM 3 weights: "
                          "huggingface-cli download facebook/sam3, or set AMODAL_SAM3_MODEL") and "\n" not in err
