from pathlib import Path

import numpy as np
import pytest
import torch

# ``agent.flags.run_options``' positional arguments for a plain run (photo, out, hints, planner, url, model,
# timeout, segmenter, max layers, paths, size, iters, device, seed, exports, quiet, gradients)
RUN_FLAGS = (Path("a.png"), None, [], "heuristic", None, None, 10.0, "grabcut", 3, 64, 512, None, "cpu", 0, "", True,
             False)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (skipped by default)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _no_user_weights(tmp_path_factory, monkeypatch):
    """Tests never see model weights this machine may hold: every model backend looks in empty folders
    unless a test points it at the tiny model it builds."""
    from tools import flux, grounding_dino, lama, sam, sam3

    empty = tmp_path_factory.mktemp("no-weights")
    for module in (flux, grounding_dino, lama, sam, sam3):
        monkeypatch.delenv(module.ENV, raising=False)
        module.load.cache_clear()  # each test loads what it points at, and counts loads from zero
    monkeypatch.setenv("TORCH_HOME", str(empty / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(empty / "hf"))
    yield
    for module in (flux, grounding_dino, lama, sam, sam3):
        module.load.cache_clear()


def winding_number(poly: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Winding number of each point around one closed polygon (signed crossings to the right)."""
    w = np.zeros(px.shape, dtype=np.int64)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for a, b, c, d in zip(x0, y0, x1, y1, strict=True):
        if b == d:
            continue
        up = (b <= py) & (py < d)
        down = (d <= py) & (py < b)
        right = a + (py - b) * (c - a) / (d - b) > px
        w += (up & right).astype(np.int64) - (down & right).astype(np.int64)
    return w


def supersampled_coverage(polygons: list[np.ndarray], height: int, width: int, n: int = 32,
                          evenodd: bool = False) -> np.ndarray:
    """(len(polygons), H, W) fraction of n x n sample points per pixel inside each polygon
    (sampled only inside each polygon's bounding box, zero elsewhere)."""
    s = (np.arange(n) + 0.5) / n
    out = np.zeros((len(polygons), height, width))
    for k, poly in enumerate(polygons):
        x0 = int(np.clip(np.floor(poly[:, 0].min()), 0, width))
        x1 = int(np.clip(np.ceil(poly[:, 0].max()), 0, width))
        y0 = int(np.clip(np.floor(poly[:, 1].min()), 0, height))
        y1 = int(np.clip(np.ceil(poly[:, 1].max()), 0, height))
        if x1 <= x0 or y1 <= y0:
            continue
        ys = (np.arange(y0, y1)[:, None] + s[None]).reshape(-1)
        xs = (np.arange(x0, x1)[:, None] + s[None]).reshape(-1)
        px, py = np.meshgrid(xs, ys)
        w = winding_number(poly, px, py)
        inside = (w % 2 == 1) if evenodd else (w != 0)
        out[k, y0:y1, x0:x1] = inside.reshape(y1 - y0, n, x1 - x0, n).mean(axis=(1, 3))
    return out


def scanline_coverage(poly: np.ndarray, height: int, width: int, lines: int = 64,
                      evenodd: bool = False) -> tuple[int, np.ndarray] | None:
    """Coverage of one closed polygon on ``lines`` horizontal lines per pixel row, each line's
    covered length found exactly (the crossings sorted along it): ``(first row, (rows, W))`` for
    the rows its box spans, None when it misses the canvas. Independent of the renderer's code;
    the error is at most about 1 / (2 * lines) per pixel, only where an edge is nearly horizontal."""
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    r0 = max(0, int(np.floor(y0.min())))
    r1 = min(height, int(np.ceil(y0.max())))
    if r1 <= r0:
        return None
    ys = r0 + (np.arange((r1 - r0) * lines) + 0.5) / lines
    down = (y0[:, None] <= ys[None]) & (ys[None] < y1[:, None])
    up = (y1[:, None] <= ys[None]) & (ys[None] < y0[:, None])
    e, line = np.nonzero(down | up)
    if e.size == 0:
        return None
    x = x0[e] + (ys[line] - y0[e]) * (x1[e] - x0[e]) / (y1[e] - y0[e])
    step = np.where(down[e, line], 1, -1)
    order = np.lexsort((x, line))
    line, x, step = line[order], x[order], step[order]
    wind = np.cumsum(step)
    inside = ((wind % 2 == 1) if evenodd else (wind != 0))[:-1] & (line[:-1] == line[1:])
    a, b, at = np.clip(x[:-1][inside], 0, width), np.clip(x[1:][inside], 0, width), line[:-1][inside]
    cols = np.arange(width + 1)
    upto = np.clip(cols[None] - a[:, None], 0, None) - np.clip(cols[None] - b[:, None], 0, None)
    per_line = np.zeros(((r1 - r0) * lines, width))
    np.add.at(per_line, at, upto[:, 1:] - upto[:, :-1])
    return r0, per_line.reshape(r1 - r0, lines, width).mean(1)


def scanline_composite(polygons: list[np.ndarray], colors: np.ndarray, height: int, width: int,
                       background=(1.0, 1.0, 1.0), lines: int = 64, edges: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) the polygons composited over an opaque background with ``scanline_coverage``;
    ``edges`` (H, W) bool, when given, is set where some polygon covers a pixel only in part."""
    img = np.zeros((height, width, 3)) + np.asarray(background, dtype=np.float64)
    for poly, (r, g, b, a) in zip(polygons, np.clip(colors, 0, 1), strict=True):
        got = scanline_coverage(poly, height, width, lines)
        if got is not None:
            r0, cov = got
            if edges is not None:
                edges[r0 : r0 + cov.shape[0]] |= (cov > 1e-9) & (cov < 1 - 1e-9)
            alpha = cov[..., None] * a
            img[r0 : r0 + cov.shape[0]] = img[r0 : r0 + cov.shape[0]] * (1 - alpha) + alpha * np.array([r, g, b])
    return img


def polygon_path(*outlines: list[tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight-edged outlines as cubic segments (controls on the chords), ragged form: points and
    per-outline segment counts."""
    parts, counts = [], []
    for outline in outlines:
        v = torch.tensor(outline, dtype=torch.float64)
        nxt = torch.roll(v, -1, 0)
        parts.append(torch.stack([v, v + (nxt - v) / 3, v + 2 * (nxt - v) / 3], 1).reshape(-1, 2))
        counts.append(len(outline))
    return torch.cat(parts), torch.tensor(counts)
