"""FLUX.1 Fill [dev] through diffusers' ``FluxFillPipeline``: the method's second inpainter, which
paints what a text prompt describes into the hole.

Why a second inpainter: LaMa continues the texture around a hole, which is right for most
backgrounds but smears a large hole whose content must be invented (the far half of a table under a
removed cup). The model looks at LaMa's fill, and where it is wrong it asks for FLUX with a positive
prompt of what is behind. FLUX then starts from LaMa's fill (``STRENGTH`` of the way back to noise)
rather than from noise, so the layout LaMa continued is kept and the texture is repainted. The
paper's settings: 28 steps, guidance 10.

Weights come from ``AMODAL_FLUX_MODEL`` (a folder as ``save_pretrained`` writes a diffusers
pipeline) or the Hugging Face cache, read offline. bf16 on CUDA, float32 on the CPU; where the GPU
has too little free memory for the whole pipeline, diffusers' model CPU offload keeps only the part
that runs on it. The weights are under the FLUX.1 [dev] Non-Commercial License. The ``inpaint``
backend is ``tools.inpaint.FluxInpainter``; this module is the model alone, loaded once per process
and device.
"""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .weights import locate_model, model_missing, quiet_transformers

ENV = "AMODAL_FLUX_MODEL"
REPOS = ("black-forest-labs/FLUX.1-Fill-dev",)
LICENCE = "the FLUX.1 [dev] Non-Commercial License, not Apache/MIT"
PROBE = "model_index.json"  # what marks a diffusers pipeline folder
NEEDS = ("diffusers", "transformers")
STEPS = 28  # the paper's settings
GUIDANCE = 10.0
STRENGTH = 0.85  # how far back towards noise LaMa's fill is taken (1: LaMa's fill is ignored)
MODULO = 16  # the VAE's factor 8 times the transformer's 2 x 2 patches
HEADROOM = 6 << 30  # bytes of GPU memory kept free beside the weights for the activations (512 px)


def locate() -> tuple[Path | None, str]:
    """The pipeline folder, and where it came from or where it was looked for."""
    return locate_model(ENV, REPOS, PROBE)


def missing(path: Path | None, where: str) -> str | None:
    """Why FLUX Fill cannot run here, in one line that says what to do (None when it can)."""
    return model_missing("FLUX.1 Fill", ENV, REPOS, path, where, NEEDS)


def dtype_for(device: str) -> torch.dtype:
    """bf16 where the GPU computes in it, float32 on the CPU (bf16 there is slow and not needed)."""
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def place(pipe, device: str) -> bool:
    """Move ``pipe`` onto ``device``, or offload it part by part when the GPU has too little free
    memory for all of it; whether it was offloaded."""
    if device.startswith("cuda"):
        weights = sum(p.numel() * p.element_size() for part in pipe.components.values()
                      if isinstance(part, torch.nn.Module) for p in part.parameters())
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        if weights + HEADROOM > free:
            pipe.enable_model_cpu_offload(device=device)
            return True
    pipe.to(device)
    return False


@functools.cache
def load(path: str, device: str):
    """(pipeline, whether it is offloaded, seconds the load took), once per process and device."""
    start = time.perf_counter()
    with quiet_transformers(), warnings.catch_warnings():
        from diffusers import FluxFillPipeline
        from diffusers.utils import logging

        warnings.simplefilter("ignore", FutureWarning)  # torch_dtype's new name is not in older releases
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        pipe = FluxFillPipeline.from_pretrained(path, torch_dtype=dtype_for(device))
        logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    offloaded = place(pipe, device)
    return pipe, offloaded, time.perf_counter() - start


def takes_start(pipe) -> bool:
    """Whether this diffusers' pipeline can start from an earlier fill (its ``strength``: newer releases)."""
    return "strength" in inspect.signature(type(pipe).__call__).parameters


def _padded(image: np.ndarray) -> np.ndarray:
    """``image`` with its edge pixels repeated out to sides that are multiples of ``MODULO``."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, -h % MODULO), (0, -w % MODULO)) + ((0, 0),) * (image.ndim - 2), mode="edge")


def fill(pipe, image: np.ndarray, hole: np.ndarray, prompt: str, seed: int, start: np.ndarray | None = None,
         steps: int = STEPS, guidance: float = GUIDANCE) -> np.ndarray:
    """FLUX Fill's (H, W, 3) uint8 output for ``image`` with ``hole`` (boolean, H x W) painted as
    ``prompt`` says; from ``start`` (an earlier fill of the same hole; see ``takes_start``) when given."""
    from PIL import Image

    h, w = hole.shape
    source = _padded(start if start is not None else image)
    mask = _padded(hole.astype(np.uint8) * 255)
    extra = {"strength": STRENGTH} if start is not None else {}
    with torch.inference_mode():
        out = pipe(prompt=prompt, image=Image.fromarray(source), mask_image=Image.fromarray(mask),
                   height=source.shape[0], width=source.shape[1], num_inference_steps=steps,
                   guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(int(seed)),
                   output_type="np", **extra).images[0]
    return (np.clip(out[:h, :w], 0, 1) * 255).round().astype(np.uint8)
