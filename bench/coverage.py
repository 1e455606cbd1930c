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
    python bench/coverage.py --fit astronaut --size 512     # fit a photo first (1024 paths, seed 0)
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
from common import ROOT, load_photo, psnr, rgba_tensor

sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium, missing
from conftest import scanline_composite
from PIL import Image

from tools.metrics import resvg_render
from tools.svg import parse_svg, to_svg_string
from tools.vectorize.alv import fit_layer
from tools.vectorize.geometry import check_paths, flatten
from tools.vectorize.options import VectorizeOptions
from tools.vectorize.pathset import PathSet
from tools.vectorize_file import result_document

FITTED = ROOT / "tests" / "data" / "fit-cat-1024.svg"


def exact_reference(ps: PathSet, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact render, and the pixels an edge crosses (some path covers them only in part)."""
    counts, owner = check_paths(ps.points.double(), ps.colors.double(), ps.segment_counts, ps.owner)
    poly = flatten(ps.points.double(), counts, owner, ps.num_paths, None, 0.01)
    v, pid = poly.vertices.numpy(), poly.path_id.numpy()
    edges = np.zeros((height, width), bool)
    img = scanline_composite([v[pid == p] for p in range(ps.num_paths)], ps.colors.double().numpy(), height, width,
                             edges=edges)
    return img, edges


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


def fitted(name: str, size: int) -> str:
    """A 1024-path fit of a benchmark photo at ``size`` px, as the SVG a run writes."""
    torch.set_num_threads(2)
    res = fit_layer(rgba_tensor(load_photo(name, size)), None, VectorizeOptions(paths=1024, seed=0, device="cpu"))
    return to_svg_string(result_document(res, name))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--svg", default=str(FITTED), help="the SVG to render (default: a 1024-path fit of the cat)")
    ap.add_argument("--fit", default=None, help="instead, fit this photo of bench/common.py (1024 paths, seed 0)")
    ap.add_argument("--size", type=int, default=512, help="with --fit: its longest side, px (the run's working size)")
    args = ap.parse_args()
    svg = fitted(args.fit, args.size) if args.fit else Path(args.svg).read_text()
    doc = parse_svg(svg)
    ps, h, w = doc.all_paths(), doc.height, doc.width
    exact, edges = exact_reference(ps, h, w)
    renders: dict[str, np.ndarray] = {"exact": exact, "ours": ours(ps, h, w, True),
                                      "ours area-sum": ours(ps, h, w, False), "resvg": resvg(svg, h, w)}
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, got in (("chromium", in_chromium(svg, h, w, Path(tmp))), ("inkscape", in_inkscape(svg, Path(tmp)))):
            if isinstance(got, str):
                notes.append(f"{name}: not run ({got})")
            else:
                renders[name] = got
    names = list(renders)
    what = f"{args.fit} at {args.size} px" if args.fit else Path(args.svg).name
    print(f"{what}: {ps.num_paths} paths, {w}x{h} px, over white; PSNR dB between renders")
    print(f"{'':>14}" + "".join(f"{n:>14}" for n in names) + f"{'max |err|':>11}")
    for a in names:
        row = "".join(f"{'-' if a == b else f'{psnr(renders[a], renders[b]):.2f}':>14}" for b in names)
        print(f"{a:>14}{row}{np.abs(renders[a] - renders['exact']).max():>11.4f}")
    print("exact: 64 lines per pixel, exact along each line; max |err|: largest per-pixel, per-channel error "
          "against it")
    # where a viewer parts from exact: its anti-aliasing shows on the pixels an edge crosses, its
    # 8-bit compositing everywhere
    print(f"against exact, on the {edges.mean():.0%} of pixels an edge crosses / on the rest:")
    for name in names[1:]:
        got = renders[name]
        print(f"{name:>14}  {psnr(got[edges], exact[edges]):6.2f} / {psnr(got[~edges], exact[~edges]):6.2f} dB")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
