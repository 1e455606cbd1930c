"""LaMa (Suvorov et al. 2022, "Resolution-robust Large Mask Inpainting with Fourier Convolutions"), the
inpainter the method is built on, through its TorchScript export ``big-lama.pt``.

Why TorchScript: it is the file IOPaint, lama-cleaner and simple-lama-inpainting users already have
(those tools download it into torch hub's checkpoint folder). The file carries its own architecture, so
running it needs torch alone: no LaMa code, config or extra package. Its contract, shared by those
tools: ``forward(image, mask)`` with image (1, 3, H, W) RGB in [0, 1] and mask (1, 1, H, W), 1 in the
hole, H and W multiples of 8; it returns (1, 3, H, W) in [0, 1].

Where the file is looked for, first hit wins: ``AMODAL_LAMA_MODEL``, torch hub's checkpoint folder,
then any snapshot in the Hugging Face cache that holds ``big-lama.pt``. A model is loaded once per
process and device, and reused by every later call. The ``inpaint`` backend is
``tools.inpaint.LamaInpainter``; this module is the model alone.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .weights import hf_cache

ENV = "AMODAL_LAMA_MODEL"
FILENAME = "big-lama.pt"
MODULO = 8  # LaMa's downsampling needs sides that are multiples of this
URL = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"  # where IOPaint gets it
HUB_FILE = f"~/.cache/torch/hub/checkpoints/{FILENAME}"  # where IOPaint keeps it (torch hub's default folder)


def locate() -> tuple[Path | None, str]:
    """The TorchScript file, and where it was looked for (for doctor and the error message)."""
    looked = []
    explicit = os.environ.get(ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path, f"{ENV}={explicit}"
        return None, f"{ENV}={explicit} is not a file"
    looked.append(f"{ENV} (unset)")
    hub = Path(torch.hub.get_dir()) / "checkpoints" / FILENAME
    if hub.is_file():
        return hub, str(hub)
    looked.append(str(hub.parent))
    cache = hf_cache()
    found = sorted(cache.glob(f"models--*/snapshots/*/**/{FILENAME}")) if cache.is_dir() else []
    if found:
        return found[0], str(found[0])
    looked.append(f"{cache}/models--*/snapshots/*")
    return None, "looked in " + ", ".join(looked)


def missing(path: Path | None, where: str) -> str | None:
    """Why LaMa cannot run here, in one line that says what to do (None when it can). Folders searched
    by default are left to ``doctor``: this line reaches the model and the trace, which must not
    depend on this machine's paths."""
    if path is not None:
        return None
    if not where.startswith("looked in"):  # the user's own setting, said back
        return f"no {FILENAME}: set {ENV} to LaMa's TorchScript file ({where})"
    return f"no {FILENAME}: curl -L --create-dirs -o {HUB_FILE} {URL}, or set {ENV} to the file"


@functools.cache
def load(path: str, device: str) -> tuple[torch.jit.ScriptModule, float]:
    """The scripted model on ``device``, and the seconds loading took (once per process and device)."""
    start = time.perf_counter()
    model = torch.jit.load(path, map_location=device)
    model.eval()
    return model, time.perf_counter() - start


def fill(model: torch.jit.ScriptModule, image: np.ndarray, hole: np.ndarray, device: str) -> np.ndarray:
    """LaMa's (H, W, 3) uint8 output for ``image`` with ``hole`` (boolean, H x W) to fill, everywhere."""
    h, w = hole.shape
    pad_h, pad_w = -h % MODULO, -w % MODULO
    x = torch.from_numpy(np.array(image, np.uint8)).permute(2, 0, 1)[None].float() / 255  # a copy: may be read-only
    m = torch.from_numpy(np.ascontiguousarray(hole))[None, None].float()
    # edge pixels repeated, not zeros: a black border would bleed into a hole that touches it
    x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    m = F.pad(m, (0, pad_w, 0, pad_h), mode="replicate")
    with torch.inference_mode():
        out = model(x.to(device), m.to(device))
    if not (isinstance(out, torch.Tensor) and out.shape == x.shape):
        raise ValueError(f"not a LaMa TorchScript model: forward(image, mask) returned "
                         f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}, expected {tuple(x.shape)}")
    return (out[0, :, :h, :w].permute(1, 2, 0).float().clamp(0, 1) * 255).round().byte().cpu().numpy()
