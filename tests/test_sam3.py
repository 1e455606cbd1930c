"""The SAM 3 backend on a tiny random-weight SAM 3 built from transformers' configs, through the path
its users take. transformers' SAM 3 needs torchvision, which this project never installs: where it
does not work these tests skip, saying why, and the rest of the suite checks that SAM 3 is then
reported as unavailable with that reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import build_tiny_sam3, disc_photo, heuristic_run

from tools import sam3
from tools.segment import Sam3Segmenter, SamSegmenter, choose_segmenter

pytest.importorskip("transformers", reason="the [models] extra is not installed")


def test_without_torchvision_sam3_says_why(tmp_path, monkeypatch):
    problem = sam3.torchvision_problem()
    monkeypatch.setenv(sam3.ENV, str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    ok, why = Sam3Segmenter.available()
    assert ok == (problem is None)
    if problem is not None:  # weights are there, torchvision is not: that is the one reason given
        assert why == problem and why.startswith("SAM 3 needs torchvision")
        assert choose_segmenter()[0] is not Sam3Segmenter


needs_torchvision = pytest.mark.skipif(sam3.torchvision_problem() is not None,
                                       reason=sam3.torchvision_problem() or "")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_sam3(tmp_path_factory.mktemp("sam3") / "tiny-sam3")


@needs_torchvision
def test_sam3_masks_the_named_object_in_the_box(tiny_folder, monkeypatch):
    monkeypatch.setenv(sam3.ENV, str(tiny_folder))
    assert Sam3Segmenter.available() == (True, f"{sam3.ENV}={tiny_folder}")
    assert choose_segmenter() == (Sam3Segmenter, None)  # preferred where it runs
    img = disc_photo()
    res = Sam3Segmenter(device="cpu").segment(img, (10, 8, 40, 37), keywords=["red", "disc"])
    assert res.mask.shape == img.shape[:2] and res.mask.dtype == bool and res.mask.any()
    assert res.found.startswith("sam3 on 'red': ")
    model, processor, _ = sam3.load(str(tiny_folder), "cpu")
    masks, boxes, scores = sam3.predict(model, processor, img, "red", (10, 8, 40, 37), "cpu")
    assert masks.shape[1:] == img.shape[:2] and boxes.shape == (len(scores), 4)
    assert list(scores) == sorted(scores, reverse=True)
    assert sam3.load.cache_info().misses == 1


@needs_torchvision
def test_a_run_uses_sam3_without_a_detector(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(sam3.ENV, str(tiny_folder))
    code, manifest, out = heuristic_run(tmp_path, "--max-layers", "1")
    assert code == 0 and manifest["backends"]["segment"] == ["sam3"], manifest["reason"]
    assert "detect" not in manifest["backends"] and manifest["timings_s"]["load:sam3"] > 0
    assert json.loads((out / "manifest.json").read_text())["options"]["segmenter"] == "auto"
    assert SamSegmenter.grounded is False and Sam3Segmenter.grounded is True
