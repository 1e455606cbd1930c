"""Exact coverage where an outline meets itself inside a pixel (tools/vectorize/crossings.py).

The area sum alone cancels opposite windings and doubles folded ones in such pixels; each case
here is built so that the error is large without the correction, and then checked against an
independent reference (conftest's scanline coverage, 64 lines per pixel, exact along each line).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import polygon_path, scanline_composite, scanline_coverage

from tools.image import psnr
from tools.metrics import resvg_render
from tools.svg import parse_svg
from tools.vectorize import render
from tools.vectorize.geometry import check_paths, flatten

H = W = 24
DATA = Path(__file__).parent / "data"


def coverage(points, counts, exact=True, rule="nonzero", lines=16):
    col = torch.tensor([[0.1, 0.2, 0.3, 1.0]], dtype=torch.float64)
    img = render(points, col, H, W, segment_counts=counts, subpath_owner=torch.zeros(len(counts), dtype=torch.long),
                 samples=1, fill_rule=rule, exact=exact, exact_lines=lines)
    return img[..., 3].numpy()


def reference(outlines, rule="nonzero"):
    """Scanline coverage of the outlines filled together (one polygon whose outlines are joined by
    zero-width bridges from and back to the origin, which add no winding)."""
    joined = np.concatenate([np.vstack([o, o[:1], [(-1.0, -1.0)]]) for o in map(np.asarray, outlines)])
    r0, cov = scanline_coverage(joined.astype(np.float64), H, W, 64, evenodd=rule == "evenodd")
    out = np.zeros((H, W))
    out[r0 : r0 + cov.shape[0]] = cov
    return out


def test_pixels_entered_twice_between_the_lines_keep_their_coverage():
    """A top edge that doubles back on itself between two of a pixel's lines: the outline enters
    those pixels two or three times but crosses none of their lines, so the crossing pass has
    candidates and no crossings at all."""
    square = [(2.0, 10.5), (7.7, 10.5), (4.3, 10.5), (12.0, 10.5), (12.0, 14.0), (2.0, 14.0)]
    points, counts = polygon_path(square)
    exact = coverage(points, counts)
    assert np.allclose(exact, coverage(points, counts, exact=False), atol=1e-6)
    assert np.abs(exact - reference([square])).max() < 0.035


CASES = {
    # a bow-tie: lobes of winding +1 and -1 meet at a waist in the middle of pixel (10, 12)
    "figure-eight": [[(6.53, 8.51), (14.53, 16.49), (14.47, 8.51), (6.47, 16.49)]],
    # one square traced twice, the second time 0.35 px further in: windings 0, 1 and 2 share pixels
    "double-loop": [[(4.2, 4.3), (19.6, 4.3), (19.6, 19.7), (4.2, 19.7), (4.2, 4.65), (4.55, 4.65),
                     (19.25, 4.65), (19.25, 19.35), (4.55, 19.35), (4.55, 4.65), (4.2, 4.65)]],
    # a flap twisted over at the edge: its tip (winding -1) and the body (+1) meet inside a pixel
    "twisted-flap": [[(3.4, 3.2), (12.6, 3.2), (12.6, 11.5), (14.6, 13.3), (14.6, 11.7), (12.6, 13.5),
                      (12.6, 20.6), (3.4, 20.6)]],
    # two outlines of one path wound opposite ways, 0.2 px apart in the same pixels: +1, 0, -1
    "opposite-sliver": [[(3.3, 3.3), (11.4, 3.3), (11.4, 20.4), (3.3, 20.4)],
                        [(11.6, 3.3), (11.6, 20.4), (12.3, 20.4), (12.3, 3.3)]],
}
@pytest.mark.parametrize("name", CASES)
def test_self_meeting_outlines_match_the_reference(name):
    outlines = CASES[name]
    points, counts = polygon_path(*outlines)
    ref = reference(outlines)
    exact = np.abs(coverage(points, counts) - ref)
    bare = np.abs(coverage(points, counts, exact=False) - ref)
    print(f"{name}: max abs error {exact.max():.4f} exact, {bare.max():.4f} area sum alone")
    assert bare.max() > 0.1  # the case really breaks the area sum
    assert exact.max() < 0.035  # 16 lines per pixel against 64: the error bound, not luck
    assert exact.mean() < 2e-3
    coarse = np.abs(coverage(points, counts, lines=8) - ref)  # what the fit uses while it optimizes
    assert coarse.max() < 0.07


def test_evenodd_crossings_match_the_reference():
    outlines = CASES["double-loop"]
    points, counts = polygon_path(*outlines)
    ref = reference(outlines, "evenodd")
    err = np.abs(coverage(points, counts, rule="evenodd") - ref)
    bare = np.abs(coverage(points, counts, exact=False, rule="evenodd") - ref)
    print(f"double loop, evenodd: max abs error {err.max():.4f} exact, {bare.max():.4f} area sum alone")
    assert bare.max() > 0.15
    assert err.max() < 0.05  # a horizontal edge inside a resolved pixel: up to 1 / 32 per line set


def test_simple_outlines_keep_the_area_sum():
    """Pixels the area sum gets right are left alone: a convex shape and a thin sliver (two passes of
    the outline through one pixel, windings 0, 1, 0) render identically with and without it."""
    for outline in ([(3.3, 4.1), (18.6, 5.2), (15.2, 19.7), (4.4, 16.3)],
                    [(3.3, 4.1), (18.6, 4.3), (18.6, 4.6), (3.3, 4.5)]):
        points, counts = polygon_path(outline)
        assert np.array_equal(coverage(points, counts), coverage(points, counts, exact=False))


@pytest.mark.parametrize("name", ["figure-eight", "twisted-flap", "opposite-sliver"])
def test_gradients_in_crossing_pixels_match_finite_differences(name):
    points, counts = polygon_path(*CASES[name])
    cols = torch.tensor([[0.2, 0.5, 0.9, 0.8]], dtype=torch.float64)
    points.requires_grad_(True)
    cols.requires_grad_(True)
    owner = torch.zeros(len(counts), dtype=torch.long)
    assert torch.autograd.gradcheck(
        lambda p, c: render(p, c, H, W, segment_counts=counts, subpath_owner=owner, samples=1,
                            background=torch.tensor([0.3, 0.6, 0.1], dtype=torch.float64)),
        (points, cols), eps=1e-7, atol=1e-5, rtol=1e-3)


@pytest.mark.slow
def test_a_fitted_1024_path_image_matches_the_reference_and_resvg():
    """A real fit (1024 paths on scikit-image's cat at 256 px, written by the fitter) is full of
    slivers and folds: the renderer must show what an exact rasterizer and resvg show."""
    svg = (DATA / "fit-cat-1024.svg").read_text()
    doc = parse_svg(svg)
    ps = doc.all_paths()
    h, w = doc.height, doc.width
    white = torch.ones(3, dtype=torch.float64)
    ours = ps.render(h, w, background=white, dtype=torch.float64).image[..., :3].numpy()
    bare = ps.render(h, w, background=white, dtype=torch.float64, exact=False).image[..., :3].numpy()
    counts, owner = check_paths(ps.points.double(), ps.colors.double(), ps.segment_counts, ps.owner)
    poly = flatten(ps.points.double(), counts, owner, ps.num_paths, None, 0.01)
    v, pid = poly.vertices.numpy(), poly.path_id.numpy()
    ref = scanline_composite([v[pid == p] for p in range(ps.num_paths)], ps.colors.double().numpy(), h, w)
    shown = resvg_render(svg, w, h, background="#ffffff")[..., :3]
    err, bare_err = np.abs(ours - ref).max(-1), np.abs(bare - ref).max(-1)
    print(f"fitted 1024 paths: internal vs reference {psnr(ours, ref):.2f} dB (max per-pixel error "
          f"{err.max():.4f}, {int((err > 0.01).sum())} pixels over 0.01); area sum alone "
          f"{psnr(bare, ref):.2f} dB (max {bare_err.max():.4f}); internal vs resvg {psnr(ours, shown):.2f} dB; "
          f"resvg vs reference {psnr(shown, ref):.2f} dB")
    assert psnr(ours, ref) >= 55
    assert err.max() < 0.05
    assert psnr(bare, ref) < psnr(ours, ref) - 5
    assert psnr(ours, shown) >= psnr(shown, ref) - 0.5  # as close to resvg as resvg is to exact
