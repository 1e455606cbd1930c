"""Layer exports for editors that do not take SVG layers: a layered PSD and one PNG per layer.

Both are rendered from the vectors (resvg, the renderer every figure of the project is measured
with) at the SVG's own size, which is the photo's size, not from the working-size rasters in
``layers/``: an export at 4000 px must not be a 512-px raster scaled up. Each layer is rendered
alone, so a layer's hidden part is in its pixels exactly as in the SVG.

The PSD goes through psd-tools (a maintained reader and writer): one named pixel layer per SVG layer,
back to front, each cropped to its opaque box and placed there, and the merged image that viewers
show is psd-tools' own composite of those layers.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomic
from .image import encode_png
from .metrics import resvg_render
from .svg import SvgDocument, SvgLayer, read_svg, to_svg_string

FORMATS = ("psd", "png")
PSD_NAME = "result.psd"  # where `--export psd` and `export RUN_DIR` put the PSD in a run folder
PNG_DIR = "png-layers"  # and the full-size PNG layers


@dataclass
class RenderedLayer:
    layer: SvgLayer
    rgba: np.ndarray  # (H, W, 4) uint8, straight alpha, at the document's size


def parse_formats(text: str) -> list[str]:
    """``"psd,png"`` -> ``["psd", "png"]``; ValueError naming what is not a format."""
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ValueError(f"--export {text!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return list(dict.fromkeys(chosen))


def source_svg(target: str | Path) -> Path:
    """A run folder's result.svg, or the SVG file itself."""
    path = Path(target)
    svg = path / "result.svg" if path.is_dir() else path
    if not svg.is_file():
        raise ValueError(f"{target}: no result.svg here" if path.is_dir() else f"{target}: no such file")
    return svg


def render_layers(doc: SvgDocument) -> list[RenderedLayer]:
    """Each layer alone, back to front, at the document's size."""
    out = []
    for layer in doc.layers:
        alone = to_svg_string(SvgDocument(doc.width, doc.height, [layer]))
        rgba = resvg_render(alone, doc.width, doc.height)
        out.append(RenderedLayer(layer, np.round(rgba * 255).astype(np.uint8)))
    return out


def png_name(layer: SvgLayer, index: int) -> str:
    """``layer-03-cup`` -> ``03-cup.png``; a layer id from elsewhere keeps its position in front."""
    stem = layer.id.removeprefix("layer-")
    return f"{stem if stem[:2].isdigit() else f'{index:02d}-{stem}'}.png"


def write_png_layers(rendered: Iterable[RenderedLayer], folder: str | Path) -> list[Path]:
    return [write_bytes_atomic(Path(folder) / png_name(r.layer, i), encode_png(r.rgba))
            for i, r in enumerate(rendered)]


def _opaque_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the pixels with any alpha; None for an empty layer."""
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def psd_bytes(rendered: list[RenderedLayer], width: int, height: int) -> bytes:
    from PIL import Image
    from psd_tools import PSDImage

    # an RGBA document keeps each layer's alpha as its transparency, not as a layer mask
    psd = PSDImage.new("RGBA", (width, height), color=(255, 255, 255, 0))
    for r in rendered:  # each new layer goes on top: back to front
        box = _opaque_box(r.rgba[..., 3])
        top, left, bottom, right = box if box is not None else (0, 0, 1, 1)  # an empty layer stays a layer
        pixels = r.rgba[top:bottom, left:right]
        layer = psd.create_pixel_layer(Image.fromarray(pixels, "RGBA"), top=top, left=left)
        layer.name = r.layer.label[:255]  # the setter keeps any Unicode name (the legacy one becomes "?")
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def write_psd(rendered: list[RenderedLayer], width: int, height: int, path: str | Path) -> Path:
    return write_bytes_atomic(path, psd_bytes(rendered, width, height))


def export(target: str | Path, psd: str | Path | None = None, png_dir: str | Path | None = None) -> list[Path]:
    """Write what was asked for (both, in the run folder, when neither is given); the paths written."""
    svg = source_svg(target)
    if psd is None and png_dir is None:
        psd, png_dir = svg.parent / PSD_NAME, svg.parent / PNG_DIR
    doc = read_svg(svg)
    rendered = render_layers(doc)
    written = []
    if psd is not None:
        written.append(write_psd(rendered, doc.width, doc.height, psd))
    if png_dir is not None:
        written.extend(write_png_layers(rendered, png_dir))
    return written
