"""Vectorize one image file: the core that the CLI, the Python API and the agent share.

Loading checks everything a user can get wrong (missing or corrupt file, unsupported format, a mask
of another size) and says so in one line (``InputError``), before any work starts.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..atomic import write_bytes_atomic
from ..svg import SvgDocument, SvgLayer, layer_id, write_svg
from .alv import Progress, VectorizeResult, fit_layer
from .options import VectorizeOptions
from .render import unpremultiply

MAX_PIXELS = 4096 * 4096


class InputError(ValueError):
    """Bad input from the user: the message is one line that says what to fix."""


def _open(path: str | Path, what: str) -> Image.Image:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: no such file")
    if p.is_dir():
        raise InputError(f"{what} {p}: is a folder, not an image")
    try:
        im = Image.open(p)
        im.load()
    except UnidentifiedImageError:
        raise InputError(f"{what} {p}: not an image format Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{what} {p}: corrupt or truncated image ({exc})") from None
    if im.width * im.height > MAX_PIXELS:
        raise InputError(f"{what} {p}: {im.width}x{im.height} is larger than the supported 4096x4096")
    return im


def load_image(path: str | Path) -> Tensor:
    """(H, W, 4) premultiplied RGBA float32 in [0, 1]; images without alpha are opaque."""
    im = _open(path, "image")
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255
    rgba[..., :3] *= rgba[..., 3:]
    return torch.from_numpy(rgba)


def load_mask(path: str | Path, size: tuple[int, int]) -> Tensor:
    """(H, W) float mask in [0, 1] (grey levels, or the alpha of an RGBA mask); must match ``size``."""
    im = _open(path, "mask")
    if (im.height, im.width) != size:
        raise InputError(f"mask {path}: is {im.width}x{im.height} but the image is {size[1]}x{size[0]}")
    if im.mode in ("RGBA", "LA", "PA"):
        m = np.asarray(im.getchannel("A"), dtype=np.float32)
    else:
        m = np.asarray(im.convert("L"), dtype=np.float32)
    return torch.from_numpy(m / 255)


def layer_target(image: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Target and mask for one layer: with a mask, the layer is the image inside it."""
    if mask is None:
        alpha = image[..., 3]
        return image, (alpha if bool((alpha < 1).any()) else None)
    return image * mask[..., None], mask


def load_layer(image: str | Path, mask: str | Path | None = None) -> tuple[Tensor, Tensor | None]:
    """Target and mask of one layer from files; every input check happens here, before any work."""
    img = load_image(image)
    m = load_mask(mask, tuple(img.shape[:2])) if mask is not None else None
    return layer_target(img, m)


def vectorize_file(
    image: str | Path,
    mask: str | Path | None = None,
    options: VectorizeOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> VectorizeResult:
    opts = (options or VectorizeOptions()).validate()
    target, layer_mask = load_layer(image, mask)
    return fit_layer(target, layer_mask, opts, on_progress)


def result_document(result: VectorizeResult, label: str = "layer") -> SvgDocument:
    return SvgDocument(result.width, result.height, [SvgLayer(layer_id(0, label), label, result.pathset())])


def write_preview(result: VectorizeResult, path: str | Path) -> Path:
    """PNG of what our renderer makes of the result (straight RGBA)."""
    with torch.no_grad():
        img = result.pathset().render(result.height, result.width).image
    rgba = (unpremultiply(img).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return write_bytes_atomic(path, buf.getvalue())


def write_result(result: VectorizeResult, path: str | Path, label: str = "layer") -> Path:
    return write_svg(result_document(result, label), path)
