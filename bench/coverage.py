"""How close each renderer comes to exact coverage, and to each other, on a fitted image (issue 14).

A 1024-path fit of a photo is full of slivers and folds. This renders one written SVG (by default
``tests/data/fit-cat-1024.svg``) with: an exact reference (every path's flattened outline
scanline-converted on 64 lines per pixel, composited in order), our renderer (exact crossings, and
the bare area sum), resvg, Chromium (Skia, headless) and Inkscape (Cairo), all over white, and
prints PSNR between every pair and each one's largest per-pixel error against the reference.

The figures say what a target "agree with viewer X to N dB" can mean: an exact renderer cannot come
closer to a viewer than that viewer is to exact coverage, and viewers differ from each other.

    python bench/coverage.py
    python bench/coverage.py --svg some-fit.svg
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, psnr

sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, missing
from conftest import scanline_composite
from PIL import Image

from tools.metrics import resvg_render
from tools.svg import parse_svg
from tools.vectorize.geometry import check_paths, flatten
from tools.vectorize.pathset import PathSet

FITTED = ROOT / "tests" / "data" / "fit-cat-1024.svg"


def exact_reference(ps: PathSet, height: int, width: int) -> np.ndarray:
    counts, owner = check_paths(ps.points.double(), ps.colors.double(), ps.segment_counts, ps.owner)
    poly = flatten(ps.points.double(), counts, owner, ps.num_paths, None, 0.01)
    v, pid = poly.vertices.numpy(), poly.path_id.numpy()
    return scanline_composite([v[pid == p] for p in range(ps.num_paths)], ps.colors.double().numpy(), height, width)


def ours(ps: PathSet, height: int, width: int, exact: bool) -> np.ndarray:
    white = torch.ones(3, dtype=torch.float64)
    return ps.render(height, width, background=white, dtype=torch.float64, exact=exact).image[..., :3].numpy()


def resvg(svg: str, height: int, width: int) -> np.ndarray:
    return resvg_render(svg, width, height, background="#ffffff")[..., :3].astype(np.float64)


def in_chromium(svg: str, height: int, width: int, scratch: Path) -> np.ndarray | str:
    """Chromium's rendering of the SVG inline in a page at (0, 0), 1 CSS px per pixel, sRGB."""
    why = missing()
    if why:
        return why
    page = scratch / "page.html"
    page.write_text('<html><head><style>svg{display:block}</style></head><body style="margin:0;background:#fff">'
                    + svg[svg.index("<svg"):] + "</body></html>")
    with chromium(width + 100, height + 200, flags=("--force-color-profile=srgb",)) as driver:
        driver.get(page.as_uri())
        time.sleep(1)
        shot = driver.get_screenshot_as_png()
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), np.float64)[:height, :width] / 255


def in_inkscape(svg: str, scratch: Path) -> np.ndarray | str:
    inkscape = shutil.which("inkscape")
    if inkscape is None:
        return "inkscape is not installed"
    (scratch / "fit.svg").write_text(svg)
    subprocess.run([inkscape, "fit.svg", "--export-type=png", "--export-area-page", "--export-background=#ffffff",
                    "--export-background-opacity=1", "--export-filename=fit.png"], cwd=scratch, capture_output=True,
                   env={"HOME": str(scratch), "PATH": "/usr/bin:/bin"}, check=True)
    return np.asarray(Image.open(scratch / "fit.png").convert("RGB"), np.float64) / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--svg", default=str(FITTED), help="the SVG to render (default: a 1024-path fit of the cat)")
    args = ap.parse_args()
    svg = Path(args.svg).read_text()
    doc = parse_svg(svg)
    ps, h, w = doc.all_paths(), doc.height, doc.width
    renders: dict[str, np.ndarray] = {"exact": exact_reference(ps, h, w), "ours": ours(ps, h, w, True),
                                      "ours area-sum": ours(ps, h, w, False), "resvg": resvg(svg, h, w)}
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, got in (("chromium", in_chromium(svg, h, w, Path(tmp))), ("inkscape", in_inkscape(svg, Path(tmp)))):
            if isinstance(got, str):
                notes.append(f"{name}: not run ({got})")
            else:
                renders[name] = got
    names = list(renders)
    print(f"{Path(args.svg).name}: {ps.num_paths} paths, {w}x{h} px, over white; PSNR dB between renders")
    print(f"{'':>14}" + "".join(f"{n:>14}" for n in names) + f"{'max |err|':>11}")
    for a in names:
        row = "".join(f"{'-' if a == b else f'{psnr(renders[a], renders[b]):.2f}':>14}" for b in names)
        print(f"{a:>14}{row}{np.abs(renders[a] - renders['exact']).max():>11.4f}")
    print("exact: 64 lines per pixel, exact along each line; max |err|: largest per-pixel, per-channel error "
          "against it")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
