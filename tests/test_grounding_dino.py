"""The GroundingDINO detector: which detection the model meant, and the real loading and calling code on
a tiny random-weight GroundingDINO (Swin + BERT) the test builds from transformers' configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "red", "disc", "cup", "saucer"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from transformers import BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig
    from transformers.models.grounding_dino import GroundingDinoImageProcessorPil, GroundingDinoProcessor

    root = tmp_path_factory.mktemp("gdino")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=4,
                      out_features=["stage1", "stage2"])
    bert = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    config = GroundingDinoConfig(backbone_config=swin.to_dict(), text_config=bert.to_dict(), d_model=32,
                                 encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10,
                                 num_feature_levels=2, encoder_n_points=2, decoder_n_points=2, max_text_len=32)
    torch.manual_seed(0)
    folder = root / "tiny-grounding-dino"
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    images = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96})
    tokenizer = BertTokenizer(str(root / "vocab.txt"))
    GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _fresh_cache():
    grounding_dino.load.cache_clear()
    yield
    grounding_dino.load.cache_clear()


def photo(h: int = 45, w: int = 61) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    img = np.full((h, w, 3), (60, 140, 70), np.uint8)
    img[(yy - 22) ** 2 + (xx - 25) ** 2 <= 12 ** 2] = (210, 40, 40)
    return img


def test_detections_come_back_as_pixel_boxes_on_the_image(tiny_folder, monkeypatch):
    monkeypatch.setenv(grounding_dino.ENV, str(tiny_folder))
    assert choose_detector() == (GroundingDinoDetector, None)
    model, processor, _ = grounding_dino.load(str(tiny_folder), "cpu")
    boxes, scores = grounding_dino.predict(model, processor, photo(), ["Red disc", "cup."], "cpu",
                                           box_threshold=0.0, text_threshold=0.0)
    assert grounding_dino.prompt(["Red disc", "cup."]) == "red disc. cup."
    assert boxes.shape == (10, 4) and scores.shape == (10,) and (np.diff(scores) <= 0).all()  # best first
    assert (boxes[:, 0] >= -1).all() and (boxes[:, 2] <= 62).all() and (boxes[:, 3] <= 46).all()  # image pixels
    detector = GroundingDinoDetector(device="cpu")
    found, how = detector.detect(photo(), ["red disc"], hint=(0, 0, 61, 45))
    # the call used its defaults (0.35): random weights may find nothing, and then it says so
    assert (found is None and how == "found nothing for the keywords") or how.startswith("kept the detection")
    assert detector.load_seconds == 0  # this process had loaded it already: counted once, by whoever loaded it
    grounding_dino.load.cache_clear()
    detector.detect(photo(), ["cup"])
    assert detector.load_seconds > 0
