"""GrabCut, the CPU segmenter, on scenes of the layer-quality bench (bench/peel_scenes.py) where it
once failed: each case is a real scene, its object's true visible mask and the box the bench's
oracle gives, so a change to the segmenter that brings a failure back shows here in seconds. And
the benches that read a peel run back (segment_replay.py, completion.py --runs), on one real run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import completion
import peel
import peel_scenes as ps
import segment_replay

from tools.image import decode_png, encode_png, to_uint8
from tools.mask_cleanup import shortfall
from tools.segment import GrabCutSegmenter


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def textured() -> ps.Scene:
    """Seed 4's scene 0: a coffee-textured rectangle, cut by the top of the frame, on the astronaut."""
    return ps.make_scene(0, seed=4)


def test_a_photo_textured_object_on_a_photo_is_grown_from_the_box_core_when_its_mask_ends_short(textured):
    """A rectangle textured with the coffee photo, on the astronaut photo: from the box alone GrabCut
    keeps only the coffee's orange, which stands out from the ring round the box, and its mask ends
    more than half the box short of the bottom. The box is tight round the object, so the mask is
    grown again from the box's core, and the note says so."""
    obj = textured.objects[0]
    assert obj.name == "photo-textured rectangle"
    image = to_uint8(textured.image)
    visible, box = obj.visible_frame > 0.5, peel.visible_box(obj)
    res = GrabCutSegmenter().segment(image, box, seed=4)
    assert _iou(res.mask, visible) >= 0.75  # 0.29 from the box alone
    assert shortfall(res.mask, box)[1] <= 0.3
    assert "short of its bottom side" in res.note and not res.guessed


def test_a_failing_retry_from_the_core_leaves_the_first_mask(monkeypatch, textured):
    image = to_uint8(textured.image)
    box = peel.visible_box(textured.objects[0])
    first = GrabCutSegmenter._foreground

    def no_core(self, *args, seeded=False):
        if seeded:
            raise cv2.error("too few foreground samples")
        return first(self, *args)

    monkeypatch.setattr(GrabCutSegmenter, "_foreground", no_core)
    res = GrabCutSegmenter().segment(image, box, seed=4)
    assert res.note is None and shortfall(res.mask, box)[1] > 0.5  # the box-alone mask, as before the retry


def test_shortfall_names_the_side_the_mask_ends_furthest_from():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 4:20] = True  # box (4, 5, 30, 15): reaches left, top, bottom; ends 10 of 26 px short of the right
    side, short = shortfall(mask, (4, 5, 30, 15))
    assert side == "right" and abs(short - 10 / 26) < 1e-9
    assert shortfall(mask, (4, 5, 20, 15)) == ("left", 0.0)
    assert shortfall(np.zeros((4, 4), bool), (0, 0, 4, 4))[1] == 1.0


def test_the_replay_bench_hands_each_segmenter_what_the_run_saw(tmp_path, textured):
    """``bench/segment_replay.py`` reads an oracle run's trace back into segment calls (the residual,
    box, seed and canvas padding each call had). Replaying them through the run's own segmenter must
    give the very masks the run recorded, or the bench judges segmenters on inputs the peel never
    had. Seed 4's scene 0 pads the canvas above its front object, which the frame cuts, so the calls
    after it see a taller canvas with the photo's frame lower down."""
    scene = textured
    run = tmp_path / "scene-00" / "oracle"
    image = tmp_path / "scene-00" / "scene.png"
    image.parent.mkdir()
    image.write_bytes(encode_png(scene.image))  # as bench/peel.py writes it
    peel.peel(image, run, argparse.Namespace(paths=16, iters=1, seed=4, box="visible"), "vlm", scene)
    calls = segment_replay.recorded_calls(ps.recorded_runs([tmp_path])[0])
    assert len(calls) == len(scene.objects) and calls[0].offset == (0, 0)
    assert all(c.offset[1] > 0 and c.image.shape[0] == ps.HEIGHT + c.offset[1] for c in calls[1:])
    assert not calls[0].front.any() and (calls[1].front == (scene.objects[0].visible_frame > 0.5)).all()
    events = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    recorded = [e["payload"]["result"]["mask_id"] for e in events
                if e["type"] == "tool_result" and e["payload"]["name"] == "segment"]
    for call, mask_id in zip(calls, recorded, strict=True):
        mask = GrabCutSegmenter().segment(call.image, call.box, seed=call.seed, keywords=call.keywords).mask
        assert (mask == (decode_png(run / "artifacts" / f"{mask_id}.png") > 127)).all()
    # bench/completion.py --runs replays unpadded runs only: this one is said to be left out
    assert completion.recorded_cases([tmp_path]) == ([], 1)
