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


WORDS = ["a", "the", "of", "and", "on", "with", "wooden", "table", "top", "grain", "red", "cup", "saucer", "wall",
         "floor", "white", "grey", "light"]

# What every FLUX.1 Fill pipeline has, whatever its sizes: the shapes its parts must agree on (16
# latent channels, 384 = 64 + 64 + 256 transformer inputs, a VAE that scales by 8) and FLUX's VAE
# scaling. ``flux_pipeline`` adds a configuration's sizes; CLIP's width is the pooled projection,
# T5's the joint attention width. bench/gpu_models.py has the real sizes.
FLUX_FIXED = {
    "transformer": dict(patch_size=1, in_channels=384, out_channels=64, guidance_embeds=True),
    "vae": dict(down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                use_post_quant_conv=False),
    "clip": dict(max_position_embeddings=77),
    "t5": dict(feed_forward_proj="gated-gelu"),
}
FLUX_TINY = {
    "transformer": dict(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 6, 6]),
    "vae": dict(block_out_channels=[8, 8, 8, 8], layers_per_block=1, norm_num_groups=4),
    "clip": dict(vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                 projection_dim=32),
    "t5": dict(vocab_size=1000, d_model=32, d_ff=37, num_layers=2, num_heads=4, d_kv=8),
}


def clip_tokenizer(max_length: int = 77):
    """A CLIP tokenizer with a vocabulary of whole words (ids well under any CLIP vocabulary size)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1} | {f"{w}</w>": i + 2 for i, w in enumerate(WORDS)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def t5_tokenizer(max_length: int = 512):
    """A T5 (unigram) tokenizer with a vocabulary of whole words and letters."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(f"\u2581{w}", -1.0) for w in WORDS]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def flux_pipeline(config: dict = FLUX_TINY, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """A random-weight FLUX.1 Fill pipeline of ``config``'s sizes, built on ``device``."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in ``dtype``: FLUX's 17 billion weights in float32 would not fit an H100
    try:
        with torch.device(device):
            sized = {part: FLUX_FIXED[part] | config[part] for part in FLUX_FIXED}
            parts = dict(transformer=FluxTransformer2DModel(**sized["transformer"]),
                         vae=AutoencoderKL(**sized["vae"]),
                         text_encoder=CLIPTextModel(CLIPTextConfig(**sized["clip"])),
                         text_encoder_2=T5EncoderModel(T5Config(**sized["t5"])))
    finally:
        torch.set_default_dtype(default)
    parts = {k: v.to(dtype).eval() for k, v in parts.items()}
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    return FluxFillPipeline(scheduler=scheduler, tokenizer=clip_tokenizer(), tokenizer_2=t5_tokenizer(), **parts)


def build_tiny_flux(folder: Path) -> Path:
    """A tiny random-weight FLUX.1 Fill pipeline saved as ``save_pretrained`` writes it."""
    flux_pipeline().save_pretrained(folder)
    return folder


def sam3_processor(side: int):
    """SAM 3's processor for ``side`` px inputs with the whole-word CLIP tokenizer (needs torchvision)."""
    from transformers import Sam3Processor
    from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

    return Sam3Processor(image_processor=Sam3ImageProcessor(size={"height": side, "width": side}),
                         tokenizer=clip_tokenizer(32))


def build_tiny_sam3(folder: Path, side: int = 56) -> Path:
    """A random-weight SAM 3 (a two-layer ViT on 4 x 4 patches of 14 px, every part narrow) and its
    processor saved as ``save_pretrained`` writes them. transformers' SAM 3 needs torchvision."""
    from transformers import Sam3Config, Sam3Model

    grid = side // 14
    vit = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, image_size=side,
               patch_size=14, window_size=2, global_attn_indexes=[1], pretrain_image_size=side)
    vision = dict(backbone_config=vit, fpn_hidden_size=32,
                  backbone_feature_sizes=[[grid * 4, grid * 4], [grid * 2, grid * 2], [grid, grid]])
    narrow = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    config = Sam3Config(
        vision_config=vision,
        text_config=dict(model_type="clip_text_model", vocab_size=1000, hidden_size=32, intermediate_size=64,
                         projection_dim=32, bos_token_id=0, eos_token_id=1, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=32),
        geometry_encoder_config=narrow | dict(num_layers=1), detr_encoder_config=narrow | dict(num_layers=1),
        detr_decoder_config=narrow | dict(num_layers=1, num_queries=8),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2))
    torch.manual_seed(0)
    Sam3Model(config).eval().save_pretrained(folder)
    sam3_processor(side).save_pretrained(folder)
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
