"""Seeded synthetic scenes with amodal truth, for the layer-quality benchmark (bench/peel.py).

Why synthetic: a real photo has no record of what its objects look like where they are hidden, so
the promise "each object a complete layer" cannot be checked on one. Here every object is drawn
whole first (shape at 4x, box-filtered, so its edges are anti-aliased like a photo's), and the scene
is their composite in a random depth order over a photo crop or a gradient, so each object's full
shape, full appearance and visible part are known exactly.

Objects live on an *extended* canvas: the frame plus ``MARGIN`` px on every side, so an object cut
by the frame is still complete in the truth and an object moved by up to ``MARGIN`` px can be
re-composited from it. ``Scene.objects`` is in depth order, front-most first.
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 192, 128  # the frame (the photo the CLI gets)
MARGIN = 48  # extended canvas beyond the frame on every side
SS = 4  # supersampling of the shapes
OVERLAP = (0.15, 0.50)  # overlap of an overlapping pair, as a share of the smaller object's area
NO_OVERLAP = 0.01  # below this a pair counts as not overlapping
MIN_VISIBLE = 0.3  # every object keeps at least this share of its in-frame area visible
CUT_OUTSIDE = (0.15, 0.45)  # share of a cut object's area beyond the frame
SHAPES = ("ellipse", "rectangle", "rounded rectangle", "triangle", "polygon", "blob")
FILLS = ("flat", "linear", "radial", "photo", "tinted")
BACKGROUNDS = ("grass", "brick", "gravel", "coffee", "astronaut", "gradient")
TEXTURE_PHOTOS = ("chelsea", "rocket", "coffee", "astronaut", "immunohistochemistry")
TEXTURE_GREYS = ("brick", "gravel", "grass", "camera")
HUES = ((0, "red"), (30, "orange"), (55, "yellow"), (120, "green"), (180, "cyan"), (220, "blue"),
        (275, "purple"), (320, "pink"), (360, "red"))


@dataclass
class TruthObject:
    """One object, complete. Arrays on the extended canvas unless named ``*_frame``."""

    name: str
    shape: str
    fill: str
    alpha: np.ndarray  # (Hc, Wc) float32 coverage of the full (amodal) shape
    rgb: np.ndarray  # (Hc, Wc, 3) float32 appearance, also where hidden
    visible_frame: np.ndarray = field(default=None)  # (H, W) coverage seen in the scene
    cut_sides: tuple[str, ...] = ()  # frame edges its full shape crosses

    @property
    def alpha_frame(self) -> np.ndarray:
        return frame(self.alpha)

    @property
    def rgb_frame(self) -> np.ndarray:
        return frame(self.rgb)

    @property
    def truth_over_white(self) -> np.ndarray:
        """The whole object (hidden parts too) over white, in the frame: what a perfect layer shows."""
        a = self.alpha_frame[..., None]
        return self.rgb_frame * a + (1 - a)

    @property
    def cut(self) -> bool:
        return bool(self.cut_sides)


@dataclass
class Scene:
    index: int
    seed: int
    background_kind: str
    background: np.ndarray  # (H, W, 3) float32
    objects: list[TruthObject]  # front-most first
    image: np.ndarray = field(default=None)  # (H, W, 3) float32, the composite

    @property
    def name(self) -> str:
        return f"scene-{self.index:02d}"


def frame(a: np.ndarray) -> np.ndarray:
    """The frame's part of an extended-canvas array."""
    return a[MARGIN:MARGIN + HEIGHT, MARGIN:MARGIN + WIDTH]


def shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``a`` moved by (dx, dy) pixels, zeros where nothing moved in (no wrap-around)."""
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def composite(scene: Scene, moved: dict[int, tuple[int, int]] | None = None) -> np.ndarray:
    """The frame as the truth paints it (back to front, "over"), with objects optionally moved."""
    out = scene.background.astype(np.float32).copy()
    for i in reversed(range(len(scene.objects))):
        obj = scene.objects[i]
        a, rgb = obj.alpha, obj.rgb
        if moved and i in moved:
            a, rgb = shift(a, *moved[i]), shift(rgb, *moved[i])
        a = frame(a)[..., None]
        out = frame(rgb) * a + out * (1 - a)
    return out


def visible_coverage(objects: list[TruthObject]) -> list[np.ndarray]:
    """Per object, its coverage times what every object in front leaves uncovered (frame only)."""
    seen, free = [], np.ones((HEIGHT, WIDTH), np.float32)
    for obj in objects:
        a = obj.alpha_frame
        seen.append(a * free)
        free = free * (1 - a)
    return seen


def overlap_share(a: np.ndarray, b: np.ndarray) -> float:
    """Shared area of two coverages as a share of the smaller one's area (full shapes)."""
    return float((a * b).sum() / max(min(a.sum(), b.sum()), 1e-6))


# -------------------------------------------------------------------------------------- drawing


@functools.cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    arr = getattr(skimage.data, name)()
    return (arr.astype(np.float32) / 255) if arr.dtype == np.uint8 else arr.astype(np.float32)


def _crop(rng: np.random.Generator, name: str, w: int, h: int) -> np.ndarray:
    """A random crop of a scikit-image photo with the aspect of (w, h), resized to it (Lanczos)."""
    src = _photo(name)
    sh, sw = src.shape[:2]
    cw = int(min(sw, sh * w / h) * rng.uniform(0.35, 0.8))
    ch = max(1, round(cw * h / w))
    x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    im = Image.fromarray((src[y0:y0 + ch, x0:x0 + cw] * 255).astype(np.uint8))
    out = np.asarray(im.resize((w, h), Image.LANCZOS), np.float32) / 255
    return out if out.ndim == 3 else out[..., None].repeat(3, -1)


def _random_colour(rng: np.random.Generator, hue: float) -> np.ndarray:
    s, v = rng.uniform(0.55, 0.9), rng.uniform(0.55, 0.95)
    return np.array(colorsys.hsv_to_rgb((hue % 360) / 360, s, v), np.float32)


def _hue_name(hue: float) -> str:
    return min(HUES, key=lambda hn: abs(hn[0] - hue % 360))[1]


def _ramp(shape: tuple[int, int], angle: float) -> np.ndarray:
    """0..1 along ``angle`` across an (h, w) grid."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xs * np.cos(angle) + ys * np.sin(angle)
    return (t - t.min()) / max(float(t.max() - t.min()), 1e-6)


def background(rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "gradient":
        c0, c1 = (_random_colour(rng, rng.uniform(0, 360)) * rng.uniform(0.6, 1.0) for _ in range(2))
        t = _ramp((HEIGHT, WIDTH), rng.uniform(0, 2 * np.pi))[..., None]
        return (c0 * (1 - t) + c1 * t).astype(np.float32)
    out = _crop(rng, kind, WIDTH, HEIGHT)
    if kind in TEXTURE_GREYS:  # grey textures get a muted tint, so they read as a surface
        tint = 0.6 + 0.4 * _random_colour(rng, rng.uniform(0, 360))
        out = out * tint
    return np.clip(out, 0, 1).astype(np.float32)


def outline(rng: np.random.Generator, shape: str, cx: float, cy: float, a: float, b: float,
            theta: float) -> np.ndarray:
    """(N, 2) polygon of a shape centred at (cx, cy), half-extents (a, b), rotated by theta."""
    t = np.linspace(0, 2 * np.pi, 144, endpoint=False)
    if shape == "ellipse":
        pts = np.stack([a * np.cos(t), b * np.sin(t)], 1)
    elif shape == "rectangle":
        pts = np.array([[-a, -b], [a, -b], [a, b], [-a, b]], float)
    elif shape == "rounded rectangle":
        r = 0.35 * min(a, b)
        arc = np.linspace(0, np.pi / 2, 10)
        corners = ((1, 1, 1), (-1, 1, -1), (-1, -1, 1), (1, -1, -1))
        pts = np.concatenate([np.stack([sx * (a - r + r * np.cos(arc[::d])), sy * (b - r + r * np.sin(arc[::d]))], 1)
                              for sx, sy, d in corners])
    elif shape in ("triangle", "polygon"):
        n = 3 if shape == "triangle" else int(rng.integers(5, 7))
        ang = np.sort(2 * np.pi * (np.arange(n) + rng.uniform(-0.2, 0.2, n)) / n)
        rad = rng.uniform(0.85, 1.0, n)
        pts = np.stack([a * rad * np.cos(ang), b * rad * np.sin(ang)], 1)
    elif shape == "blob":
        r = np.ones_like(t)
        for k in (2, 3, 4):
            r += rng.uniform(0.0, 0.16) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
        pts = np.stack([a * r * np.cos(t), b * r * np.sin(t)], 1) / r.max()
    else:
        raise ValueError(f"unknown shape {shape!r}")
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return pts @ rot.T + np.array([cx, cy])


def coverage(poly: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased coverage of a polygon: drawn at SS x, box-filtered down (as a camera integrates)."""
    im = Image.new("L", (width * SS, height * SS), 0)
    ImageDraw.Draw(im).polygon([(float(x), float(y)) for x, y in poly * SS - 0.5], fill=255)
    return np.asarray(im, np.float32).reshape(height, SS, width, SS).mean((1, 3)) / 255


def appearance(rng: np.random.Generator, fill: str, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The object's RGB over the extended canvas (meaningful inside its shape, also where hidden)."""
    hc, wc = alpha.shape
    out = np.broadcast_to(colour, (hc, wc, 3)).astype(np.float32).copy()
    ys, xs = np.nonzero(alpha > 0)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = (y1 - y0, x1 - x0)
    if fill == "linear":
        t = _ramp(box, rng.uniform(0, 2 * np.pi))[..., None]
        out[y0:y1, x0:x1] = colour * (1.15 - 0.65 * t)
    elif fill == "radial":
        yy, xx = np.mgrid[0:box[0], 0:box[1]].astype(np.float32)
        hy, hx = box[0] * rng.uniform(0.2, 0.5), box[1] * rng.uniform(0.2, 0.5)
        d = np.hypot(yy - hy, xx - hx)[..., None] / max(box)
        out[y0:y1, x0:x1] = colour * (1.3 - 0.9 * np.clip(d, 0, 1))
    elif fill == "photo":
        out[y0:y1, x0:x1] = _crop(rng, TEXTURE_PHOTOS[int(rng.integers(len(TEXTURE_PHOTOS)))], box[1], box[0])
    elif fill == "tinted":
        g = _crop(rng, TEXTURE_GREYS[int(rng.integers(len(TEXTURE_GREYS)))], box[1], box[0]).mean(-1, keepdims=True)
        out[y0:y1, x0:x1] = colour * (0.45 + 1.1 * g)
    return np.clip(out, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------ placement


def _crossed_sides(alpha: np.ndarray) -> tuple[str, ...]:
    """Frame edges that the shape extends past."""
    m = MARGIN
    beyond = {"left": alpha[:, :m], "top": alpha[:m, :], "right": alpha[:, m + WIDTH:], "bottom": alpha[m + HEIGHT:, :]}
    return tuple(side for side, part in beyond.items() if part.sum() > 0.5)


def _fits(alpha: np.ndarray, cut: bool) -> bool:
    """A cut object crosses the frame by the asked share and stays on the extended canvas; any other
    object stays 2 px inside the frame."""
    total = float(alpha.sum())
    if cut:
        inner = np.zeros_like(alpha)
        inner[2:-2, 2:-2] = 1
        outside = 1 - float(frame(alpha).sum()) / total
        return CUT_OUTSIDE[0] <= outside <= CUT_OUTSIDE[1] and float((alpha * (1 - inner)).sum()) == 0
    inset = np.zeros_like(alpha)
    inset[MARGIN + 2:MARGIN + HEIGHT - 2, MARGIN + 2:MARGIN + WIDTH - 2] = 1
    return float((alpha * (1 - inset)).sum()) == 0


def _overlaps_ok(alpha: np.ndarray, placed: list[np.ndarray]) -> bool:
    """Each pair either does not overlap or overlaps by a share in OVERLAP; at least one does."""
    if not placed:
        return True
    shares = [overlap_share(alpha, p) for p in placed]
    if any(NO_OVERLAP <= s < OVERLAP[0] or s > OVERLAP[1] for s in shares):
        return False
    return any(s >= OVERLAP[0] for s in shares)


def _place(rng: np.random.Generator, shape: str, placed: list[tuple[float, float, float]], cut: bool
           ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A random pose: anywhere for the first object, near an earlier one otherwise (so they overlap);
    a cut object sits across a frame edge."""
    a = rng.uniform(20, 36)
    b = a * rng.uniform(0.55, 1.0)
    theta = rng.uniform(0, np.pi)
    if placed:
        px, py, pr = placed[int(rng.integers(len(placed)))]
        ang, dist = rng.uniform(0, 2 * np.pi), (pr + a) * rng.uniform(0.35, 0.85)
        cx, cy = px + dist * np.cos(ang), py + dist * np.sin(ang)
    else:
        cx, cy = rng.uniform(a, WIDTH - a), rng.uniform(b, HEIGHT - b)
    if cut and not placed:  # push the first (cut) object across its nearest edge
        side = int(rng.integers(4))
        cx = [rng.uniform(-0.2, 0.5) * a, cx, WIDTH - rng.uniform(-0.2, 0.5) * a, cx][side]
        cy = [cy, rng.uniform(-0.2, 0.5) * b, cy, HEIGHT - rng.uniform(-0.2, 0.5) * b][side]
    poly = outline(rng, shape, cx + MARGIN, cy + MARGIN, a, b, theta)
    return poly, (cx, cy, a)


def make_scene(index: int, seed: int = 0) -> Scene:
    """Scene ``index`` of the seeded set: 2-4 objects, random shapes, fills, poses and depth order."""
    rng = np.random.default_rng([seed, index])
    bg_kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    bg = background(rng, bg_kind)
    wc, hc = WIDTH + 2 * MARGIN, HEIGHT + 2 * MARGIN
    while True:  # rejection sampling; every draw comes from rng, so the result is fixed by (seed, index)
        n = int(rng.integers(2, 5))
        cut_one = bool(rng.random() < 0.4)
        hue0 = rng.uniform(0, 360)
        alphas, poses, shapes = [], [], []
        for i in range(n):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            for _ in range(400):
                poly, pose = _place(rng, shape, poses, cut_one and i == 0)
                alpha = coverage(poly, wc, hc)
                if alpha.sum() > 0 and _fits(alpha, cut_one and i == 0) and _overlaps_ok(alpha, alphas):
                    break
            else:
                break
            alphas.append(alpha)
            poses.append(pose)
            shapes.append(shape)
        if len(alphas) < n:
            continue
        order = _depth_order(rng, alphas)
        if order is None:
            continue
        objects = []
        for i in order:
            hue = hue0 + 360 * i / n + rng.uniform(-15, 15)
            fill = FILLS[int(rng.integers(len(FILLS)))]
            rgb = appearance(rng, fill, _random_colour(rng, hue), alphas[i])
            colour_word = "photo-textured" if fill == "photo" else _hue_name(hue)  # a photo crop has no one hue
            objects.append(TruthObject(f"{colour_word} {shapes[i]}", shapes[i], fill, alphas[i], rgb,
                                       cut_sides=_crossed_sides(alphas[i])))
        _unique_names(objects)
        for obj, seen in zip(objects, visible_coverage(objects), strict=True):
            obj.visible_frame = seen
        scene = Scene(index, seed, bg_kind, bg, objects)
        scene.image = composite(scene)
        return scene


def _depth_order(rng: np.random.Generator, alphas: list[np.ndarray]) -> list[int] | None:
    """A random front-to-back order in which every object keeps MIN_VISIBLE of its in-frame area."""
    for _ in range(20):
        order = [int(i) for i in rng.permutation(len(alphas))]
        free, ok = np.ones((HEIGHT, WIDTH), np.float32), True
        for i in order:
            a = frame(alphas[i])
            ok = ok and float((a * free).sum()) >= MIN_VISIBLE * float(a.sum())
            free = free * (1 - a)
        if ok:
            return order
    return None


def _unique_names(objects: list[TruthObject]) -> None:
    seen: dict[str, int] = {}
    for obj in objects:
        seen[obj.name] = seen.get(obj.name, 0) + 1
        if seen[obj.name] > 1:
            obj.name = f"{obj.name} {seen[obj.name]}"


def make_scenes(n: int = 12, seed: int = 0) -> list[Scene]:
    return [make_scene(i, seed) for i in range(n)]


# -------------------------------------------------------------------------------------- metrics
# Pure functions of a layer's pixels (straight RGBA in [0, 1], frame-sized) and the truth, so the
# tests can check them on hand-made layers.

PSNR_CAP = 99.0  # as everywhere in the project (tools.image.psnr)


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, capped) of two images on the pixels of ``mask``; NaN for an empty mask."""
    if not mask.any():
        return math.nan
    mse = float(np.mean((np.asarray(a, np.float64)[mask] - np.asarray(b, np.float64)[mask]) ** 2))
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else min(PSNR_CAP, -10 * math.log10(mse))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


def layer_metrics(rgba: np.ndarray, obj: TruthObject) -> dict[str, float]:
    """Amodal IoU, hidden recall, spill, and colour PSNR on the visible and the hidden part.

    Coverage is alpha > 0.5; hidden means inside the full shape (> 0.5) but not visible (<= 0.5).
    Colours compare the layer over white with the whole true object over white, so a pixel the
    layer leaves uncovered counts as a wrong colour too, and a true anti-aliased rim is no error.
    ``psnr_hid_cov`` is the hidden part's PSNR on the pixels the layer does cover: the colour of the
    completion apart from its extent. Hidden figures are NaN when nothing of the object is hidden.
    """
    cov = rgba[..., 3] > 0.5
    full = obj.alpha_frame > 0.5
    hidden = full & ~(obj.visible_frame > 0.5)
    return {"iou": iou(cov, full),
            "recall": float((cov & hidden).sum() / hidden.sum()) if hidden.any() else math.nan,
            "spill": float((cov & ~full).sum() / max(int(full.sum()), 1)),
            "psnr_vis": masked_psnr(over_white(rgba), obj.truth_over_white, obj.visible_frame > 0.5),
            "psnr_hid": masked_psnr(over_white(rgba), obj.truth_over_white, hidden),
            "psnr_hid_cov": masked_psnr(over_white(rgba), obj.truth_over_white, hidden & cov)}


def over_white(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA (H, W, 4) composited over white."""
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])


@dataclass
class RecordedRun:
    """An oracle run that ``bench/peel.py --out DIR`` left (``DIR/scene-NN/oracle``), read back with
    its scene regenerated from the run's seed: what the replay benches judge a step on."""

    folder: Path
    scene: Scene
    seeds: dict  # the manifest's seeds (run, segment, ...)
    events: list[dict]  # the trace, in order

    def artifact(self, artifact_id: str, mode: str | None = None) -> np.ndarray:
        with Image.open(self.folder / "artifacts" / f"{artifact_id}.png") as im:
            return np.asarray(im.convert(mode) if mode else im.copy())


def recorded_runs(roots: list[Path]) -> list[RecordedRun]:
    """Every oracle run under ``roots``, in name order."""
    runs = []
    for trace in sorted(t for root in roots for t in Path(root).glob("scene-*/oracle/trace.jsonl")):
        folder = trace.parent
        seeds = json.loads((folder / "manifest.json").read_text())["seeds"]
        scene = make_scene(int(folder.parent.name.split("-")[1]), seeds["run"])
        runs.append(RecordedRun(folder, scene, seeds, [json.loads(line) for line in trace.read_text().splitlines()]))
    return runs
