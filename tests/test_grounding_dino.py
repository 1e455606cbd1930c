"""The GroundingDINO detector: which detection the model meant, and the real loading and calling code on
a tiny random-weight GroundingDINO (Swin + BERT) the test builds from transformers' configs."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import build_tiny_grounding_dino, disc_photo

from tools import grounding_dino
from tools.detect import GroundingDinoDetector, box_iou, choose_detector, pick


def test_pick_prefers_the_detection_the_model_meant():
    boxes = [(0, 0, 10, 10), (20, 20, 40, 40), (22, 18, 44, 42)]
    scores = [0.9, 0.5, 0.6]
    assert pick(boxes, scores, None) == ((0, 0, 10, 10), "kept the best of 3 detections (score 0.90)")
    box, how = pick(boxes, scores, (21, 19, 43, 41))  # overlaps the third most
    assert box == (22, 18, 44, 42) and how.startswith("kept the detection that agrees best with bbox_2d (IoU 0.8")
    assert pick(boxes, scores, (60, 60, 70, 70)) == (None, "none of its 3 detections overlaps bbox_2d")
    assert pick([], [], (0, 0, 5, 5)) == (None, "found nothing for the keywords")
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_without_weights_the_model_box_is_used_and_the_user_is_told():
    backend, note = choose_detector()
    assert backend is None and note.startswith("groundingdino unavailable (no GroundingDINO weights: "
                                               "huggingface-cli download IDEA-Research/grounding-dino-base")


transformers = pytest.importorskip("transformers", reason="the [models] extra is not installed")

@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_grounding_dino(tmp_path_factory.mktemp("gdino") / "tiny-grounding-dino")


def test_detections_come_back_as_pixel_boxes_on_the_image(tiny_folder, monkeypatch):
    monkeypatch.setenv(grounding_dino.ENV, str(tiny_folder))
    assert choose_detector() == (GroundingDinoDetector, None)
    model, processor, _ = grounding_dino.load(str(tiny_folder), "cpu")
    boxes, scores = grounding_dino.predict(model, processor, disc_photo(), ["Red disc", "cup."], "cpu",
                                           box_threshold=0.0, text_threshold=0.0)
    assert grounding_dino.prompt(["Red disc", "cup."]) == "red disc. cup."
    assert boxes.shape == (10, 4) and scores.shape == (10,) and (np.diff(scores) <= 0).all()  # best first
    assert (boxes[:, 0] >= -1).all() and (boxes[:, 2] <= 62).all() and (boxes[:, 3] <= 46).all()  # image pixels
    detector = GroundingDinoDetector(device="cpu")
    found, how = detector.detect(disc_photo(), ["red disc"], hint=(0, 0, 61, 45))
    # the call used its defaults (0.35): random weights may find nothing, and then it says so
    assert (found is None and how == "found nothing for the keywords") or how.startswith("kept the detection")
    assert detector.load_seconds == 0  # this process had loaded it already: counted once, by whoever loaded it
    grounding_dino.load.cache_clear()
    detector.detect(disc_photo(), ["cup"])
    assert detector.load_seconds > 0
