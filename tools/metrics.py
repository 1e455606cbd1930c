"""Reference rendering with resvg (PSNR itself lives in ``tools.image``).

Every fidelity figure the project reports is measured on what a real SVG renderer (resvg) makes of
the written file, never on our own renderer's output, so a bug in the writer or the renderer
cannot flatter the numbers.
"""

from __future__ import annotations

import numpy as np

from .image import decode_png


def resvg_render(svg: str, width: int | None = None, height: int | None = None,
                 background: str | None = None) -> np.ndarray:
    """(H, W, 4) straight RGBA in [0, 1] as resvg renders ``svg``."""
    import resvg_py

    kwargs: dict = {"svg_string": svg, "dpi": 96}  # the CSS pixel: sizes in mm or in are read as browsers do
    if width is not None:
        kwargs["width"] = width
    if height is not None:
        kwargs["height"] = height
    if background is not None:
        kwargs["background"] = background
    png = bytes(resvg_py.svg_to_bytes(**kwargs))
    return decode_png(png, "RGBA").astype(np.float64) / 255


def premultiply(rgba: np.ndarray) -> np.ndarray:
    return np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], -1)
