"""Tiny random-weight models with the real models' interfaces, saved the way users have the real
ones, so the tests exercise the real loading and calling code without any download."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SAM_SIDE = 64  # the tiny SAM's input size (SAM-H: 1024)
GDINO_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "red", "disc", "cup", "saucer"]


class TinyLama(torch.nn.Module):
    """big-lama.pt's contract: (1, 3, H, W) in [0, 1] and a (1, 1, H, W) hole mask with sides that are
    multiples of 8, out (1, 3, H, W) in [0, 1]. It fills the hole with the mean colour of the rest."""

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        if image.shape[-1] % 8 != 0 or image.shape[-2] % 8 != 0:
            raise RuntimeError("LaMa needs sides that are multiples of 8")
        known = 1 - mask
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1.0)
        return image * known + mean * mask


class NotLama(torch.nn.Module):
    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return image[:, :1]


def script(module: torch.nn.Module, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(module).save(str(path))
    return path


def build_tiny_sam(folder: Path) -> Path:
    """A random-weight SAM and its processor saved as ``save_pretrained`` writes them."""
    from transformers import SamConfig, SamModel, SamProcessor
    from transformers.models.sam.configuration_sam import (
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    vision = SamVisionConfig(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=SAM_SIDE, patch_size=16, window_size=2, global_attn_indexes=(1,),
                             num_pos_feats=16, mlp_dim=64)
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=SAM_SIDE, patch_size=16)
    decoder = SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    config = SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(),
                       mask_decoder_config=decoder.to_dict())
    torch.manual_seed(0)
    processor = SamProcessor(image_processor=SamImageProcessorPil(
        size={"longest_edge": SAM_SIDE}, pad_size={"height": SAM_SIDE, "width": SAM_SIDE},
        mask_size={"longest_edge": SAM_SIDE // 4}, mask_pad_size={"height": SAM_SIDE // 4, "width": SAM_SIDE // 4}))
    SamModel(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_grounding_dino(folder: Path) -> Path:
    """A random-weight GroundingDINO (a one-stage Swin, a one-layer BERT with a ten-word vocabulary)
    and its processor saved as ``save_pretrained`` writes them."""
    from transformers import BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig
    from transformers.models.grounding_dino import GroundingDinoImageProcessorPil, GroundingDinoProcessor

    root = folder.parent
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.txt").write_text("\n".join(GDINO_WORDS) + "\n")
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=4,
                      out_features=["stage1", "stage2"])
    bert = BertConfig(vocab_size=len(GDINO_WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    config = GroundingDinoConfig(backbone_config=swin.to_dict(), text_config=bert.to_dict(), d_model=32,
                                 encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10,
                                 num_feature_levels=2, encoder_n_points=2, decoder_n_points=2, max_text_len=32)
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    images = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96})
    tokenizer = BertTokenizer(str(root / "vocab.txt"))
    GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def disc_photo(h: int = 45, w: int = 61) -> np.ndarray:
    """An odd-sized photo (green, a red disc): what the detector and mask tests look at."""
    yy, xx = np.mgrid[:h, :w]
    img = np.full((h, w, 3), (60, 140, 70), np.uint8)
    img[(yy - 22) ** 2 + (xx - 25) ** 2 <= 12 ** 2] = (210, 40, 40)
    return img


def heuristic_run(folder: Path, *flags: str) -> tuple[int, dict, Path]:
    """A small, quick CLI run with the heuristic planner on a red box on green: exit code, manifest
    and run folder (what a backend's end-to-end test looks at)."""
    from PIL import Image

    from agent.cli import main

    img = np.full((48, 64, 3), (90, 140, 70), np.uint8)
    img[12:36, 18:46] = (210, 40, 40)
    photo = folder / "photo.png"
    Image.fromarray(img).save(photo)
    out = folder / "run"
    code = main([str(photo), "--planner", "heuristic", "--out", str(out), "--paths", "16", "--iters", "5",
                 "--quiet", "--device", "cpu", *flags])
    return code, json.loads((out / "manifest.json").read_text()), out
