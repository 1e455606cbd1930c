"""The one image boundary: photos and masks in, PNG bytes out, and the PSNR every report uses.

Everything that reads a user's file or writes a PNG goes through here, so a photo means the same
pixels wherever it is loaded (EXIF orientation applied, any mode converted, transparency over
white), a PNG of the same array is the same bytes (artifact ids are their hashes), and every PSNR
the project prints has the same cap. Bad input is an ``InputError``: one line that says what to fix.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .vectorize.optimize import psnr_from_mse

MAX_PIXELS = 8192 * 8192  # larger is refused before decoding (a decompression bomb, or hours of work)
MIN_SIDE = 16  # a photo's shorter side; below it there is nothing to peel
MAX_ASPECT = 20  # longest side / shortest side: beyond it the working copy's short side is a few pixels


class InputError(ValueError):
    """Bad input from the user: the message is one line that says what to fix."""


def open_image(path: str | Path, what: str = "image") -> Image.Image:
    """A loaded, upright PIL image (EXIF orientation applied); ``InputError`` when it is not one."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: no such file")
    if p.is_dir():
        raise InputError(f"{what} {p}: is a folder, not an image")
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(256).lstrip()
    except OSError as exc:
        raise InputError(f"{what} {p}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise InputError(f"{what} {p}: is empty (0 bytes)")
    if p.suffix.lower() in (".svg", ".svgz") or (head.startswith((b"<svg", b"<?xml")) and b"<svg" in head):
        raise InputError(f"{what} {p}: is an SVG; give a raster photo (PNG, JPEG, ...); "
                         "to change a layered SVG use `amodal-agent edit`")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(p)
            if im.width * im.height > MAX_PIXELS:  # checked on the header, before any pixel is decoded
                raise InputError(f"{what} {p}: {im.width}x{im.height} is larger than the supported "
                                 f"{_side(MAX_PIXELS)}x{_side(MAX_PIXELS)} pixels")
            im.load()
        im = ImageOps.exif_transpose(im)  # phone photos are stored sideways with an orientation tag
    except UnidentifiedImageError:
        raise InputError(f"{what} {p}: not an image format Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{what} {p}: refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{what} {p}: corrupt or truncated image ({' '.join(str(exc).split())})") from None
    return im


def _side(pixels: int) -> int:
    return round(pixels ** 0.5)


def check_photo_shape(width: int, height: int, what: str) -> None:
    """Refuse photos too small or too thin to peel, in one line that gives the limit."""
    if min(width, height) < MIN_SIDE:
        raise InputError(f"{what}: {width}x{height} is too small; a photo needs at least {MIN_SIDE} px on each side")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InputError(f"{what}: {width}x{height} is too thin (aspect ratio above {MAX_ASPECT}:1); crop it first")


def _rgba(im: Image.Image) -> np.ndarray:
    """Straight RGBA float32 in [0, 1] from any mode (16-bit grey is scaled, not clipped)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L"):
        grey = np.asarray(im, dtype=np.float32)
        grey = grey / (65535.0 if grey.max() > 255 else 255.0)
        return np.dstack([grey, grey, grey, np.ones_like(grey)])
    return np.asarray(im.convert("RGBA"), dtype=np.float32) / 255


def load_rgba(path: str | Path) -> np.ndarray:
    """(H, W, 4) premultiplied RGBA float32 in [0, 1]; images without alpha are opaque."""
    rgba = _rgba(open_image(path))
    rgba[..., :3] *= rgba[..., 3:]
    return rgba


def over_white(premultiplied: np.ndarray) -> np.ndarray:
    """(H, W, 3) of premultiplied RGBA composited over white: what a viewer shows of a photo."""
    return premultiplied[..., :3] + (1 - premultiplied[..., 3:])


def load_photo(path: str | Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], transparency over white: the photo a run works on and is measured against."""
    return over_white(load_rgba(path))


def read_photo(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """A run's photo as ``load_photo`` gives it, refused when too small or thin to peel, and what the
    user must be told about how it was read."""
    im = open_image(path, "image")
    check_photo_shape(im.width, im.height, f"image {path}")
    rgba = _rgba(im)
    notes = []
    if bool((rgba[..., 3] < 1).any()):
        notes.append(f"the photo has transparency ({im.mode}); it is worked on composited over white")
    rgba[..., :3] *= rgba[..., 3:]
    return over_white(rgba), notes


def load_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 mask in [0, 1] (grey levels, or the alpha of an RGBA mask); must match ``size``."""
    im = open_image(path, "mask")
    if (im.height, im.width) != size:
        raise InputError(f"mask {path}: is {im.width}x{im.height} but the image is {size[1]}x{size[0]}")
    channel = im.getchannel("A") if im.mode in ("RGBA", "LA", "PA") else im.convert("L")
    return np.asarray(channel, dtype=np.float32) / 255


def load_layer(image: str | Path, mask: str | Path | None = None) -> tuple[Tensor, Tensor | None]:
    """Target (premultiplied RGBA tensor) and mask of one layer from files, every check before any
    work: with a mask the layer is the image inside it; without one, the image's own alpha if any."""
    img = torch.from_numpy(load_rgba(image))
    if mask is None:
        alpha = img[..., 3]
        return img, (alpha if bool((alpha < 1).any()) else None)
    m = torch.from_numpy(load_mask(mask, (img.shape[0], img.shape[1])))
    return img * m[..., None], m


def to_uint8(array: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded); uint8 passes through."""
    a = np.asarray(array)
    return a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """uint8 or [0, 1] float (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> deterministic PNG bytes."""
    a = to_uint8(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[a.shape[2] if a.ndim == 3 else 2]
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_png(source: str | Path | bytes, mode: str | None = None) -> np.ndarray:
    """uint8 array of a PNG (a file or its bytes), converted to ``mode`` when given."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        return np.asarray(im.convert(mode) if mode else im.copy())


def working_copy(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The photo at most ``size`` px on its longest side (Lanczos), and the scale applied (0: as is).

    Fitting cost grows with the pixels paths cover, so a 12-megapixel photo would take hours on a
    CPU; paths are resolution-free, so the SVG loses nothing by being scaled back afterwards.
    """
    h, w = rgb.shape[:2]
    if not size or max(h, w) <= size:
        return rgb, 1.0
    scale = size / max(h, w)
    im = Image.fromarray(to_uint8(rgb)).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    return np.asarray(im, dtype=np.float32) / 255, scale


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images on [0, 1] (capped like every PSNR the project reports)."""
    return psnr_from_mse(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))
