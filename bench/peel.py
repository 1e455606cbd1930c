"""Layer quality: is each object a complete, clean layer that can be moved? (issue 9, step 1)

The fidelity benches score the flattened picture, which a single layer also scores well on. This
one scores what the product promises, on seeded synthetic scenes whose amodal truth is known
(``peel_scenes.py``): for every scene it runs the real CLI twice, once driven by an *oracle* model
(``tests/scripted_server.py`` serving, front to back, ``segment`` on each object's true visible box,
``pad_canvas`` when the object is cut by the frame, ``inpaint``; so only the tools are judged) and
once with the built-in heuristic planner. Everything is measured on what the user gets: each layer
of result.svg rendered alone by resvg, inside the frame.

Per layer (matched to truth objects greedily by IoU): amodal IoU, hidden recall, spill, colour PSNR
on the visible and on the hidden part (layer over white vs the object's true appearance). Per
scene: composite PSNR and edit-move fidelity (``amodal-agent edit --move`` per object vs the truth
re-composited with that object moved), beside the modal cut-out baseline (the visible pixels moved,
a white hole left). Heuristic planner: objects found (IoU > 0.5) and occlusion-order accuracy.

    python bench/peel.py                          # 12 scenes, seed 0 (about 20 minutes on 2 cores)
    python bench/peel.py --scenes 3 --seed 1 --paths 128
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT
from peel_scenes import (
    HEIGHT,
    MARGIN,
    NO_OVERLAP,
    WIDTH,
    Scene,
    TruthObject,
    composite,
    frame,
    iou,
    layer_metrics,
    make_scenes,
    overlap_share,
    shift,
)
from PIL import Image, ImageDraw

sys.path.insert(0, str(ROOT / "tests"))
from agent_script import last_result
from scripted_server import ScriptedServer, tool_calls_message

from agent.cli import main as cli
from tools.image import encode_png, psnr
from tools.metrics import resvg_render
from tools.svg import SvgDocument, read_svg, to_svg_string
from tools.vectorize.options import VectorizeOptions

# ------------------------------------------------------------------------------------ the oracle


def visible_box(obj: TruthObject) -> tuple[int, int, int, int]:
    """Half-open pixel box (frame coordinates) of every pixel the object is seen on."""
    ys, xs = np.nonzero(obj.visible_frame > 0.02)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def amodal_box(obj: TruthObject) -> tuple[int, int, int, int]:
    """Half-open pixel box (frame coordinates, may reach past the frame) of the whole shape."""
    ys, xs = np.nonzero(obj.alpha > 0.02)
    return int(xs.min()) - MARGIN, int(ys.min()) - MARGIN, int(xs.max()) + 1 - MARGIN, int(ys.max()) + 1 - MARGIN


def qwen_box(box: tuple[int, int, int, int], offset: tuple[int, int], size: tuple[int, int]) -> list[int]:
    """A frame pixel box as Qwen3-VL's relative 0..1000 box on the current canvas (frame at ``offset``)."""
    (x0, y0, x1, y1), (ox, oy), (w, h) = box, offset, size
    rel = [math.floor((x0 + ox) * 1000 / w), math.floor((y0 + oy) * 1000 / h),
           math.ceil((x1 + ox) * 1000 / w), math.ceil((y1 + oy) * 1000 / h)]
    return [min(max(v, 0), 1000) for v in rel]


def overshoot(obj: TruthObject) -> int:
    """How far (px) the full shape reaches past the frame on its farthest cut side."""
    ys, xs = np.nonzero(obj.alpha > 0.02)
    return max(MARGIN - int(xs.min()), MARGIN - int(ys.min()), int(xs.max()) + 1 - MARGIN - WIDTH,
               int(ys.max()) + 1 - MARGIN - HEIGHT, 0)


DESCRIBE = {"flat": "flat", "linear": "shaded", "radial": "shaded", "photo": "", "tinted": "textured"}


class Oracle:
    """A scripted model that knows the truth: one turn per call, decided from the request alone
    (the tool results in its messages say how far the peel got and how the canvas was padded).
    ``box="amodal"`` boxes each object's whole shape instead of its visible part (a what-if: a model
    that sees the completed object on the residual)."""

    def __init__(self, scene: Scene, box: str = "visible") -> None:
        self.scene, self.box = scene, {"visible": visible_box, "amodal": amodal_box}[box]

    def __call__(self, body: dict) -> dict:
        results = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
        # an object is done once cut, or once inpaint refused its mask as fill of earlier holes (no layer)
        done = sum(1 for r in results if ("layer_id" in r and "residual_id" in r)
                   or "already peeled" in r.get("error", ""))
        pads = [r for r in results if "padding" in r]
        offset = (sum(p["padding"]["left"] for p in pads), sum(p["padding"]["top"] for p in pads))
        size = tuple(pads[-1]["size"]) if pads else (WIDTH, HEIGHT)
        last = last_result(body) if results else None
        objects = self.scene.objects
        if last is not None and "touches" in last and "mask_id" in last:  # segmented: pad if cut, then cut out
            obj = objects[done]
            if last["touches"] and obj.cut:
                margin = min(max(overshoot(obj) + 4, 8), 512)
                return tool_calls_message("pad_canvas", {"mask_id": last["mask_id"], "margin": margin})
            return tool_calls_message("inpaint", {"mask_id": last["mask_id"], "layer_name": obj.name})
        if last is not None and "padding" in last:
            return tool_calls_message("inpaint", {"mask_id": last["mask_id"], "layer_name": objects[done].name})
        if done >= len(objects):
            return tool_calls_message("finish", {"reason": "only the background is left"})
        obj = objects[done]
        target = f"{DESCRIBE[obj.fill]} {obj.name}".strip()
        return tool_calls_message("segment", {"target": target, "keywords": obj.name.split()[-2:],
                                              "bbox_2d": qwen_box(self.box(obj), offset, size)})


# -------------------------------------------------------------------------------------- running


def peel(image: Path, out: Path, args: argparse.Namespace, planner: str, scene: Scene) -> tuple[dict, float]:
    """One CLI run into ``out``; its manifest and seconds."""
    shutil.rmtree(out, ignore_errors=True)
    flags = [str(image), "--quiet", "--out", str(out), "--paths", str(args.paths), "--seed", str(args.seed),
             "--device", "cpu"] + (["--iters", str(args.iters)] if args.iters is not None else [])
    t = time.perf_counter()
    if planner == "vlm":
        with ScriptedServer([Oracle(scene, args.box)] * (4 * len(scene.objects) + 4)) as srv:
            code = cli([*flags, "--planner", "vlm", "--vlm-url", srv.url])
    else:
        code = cli([*flags, "--planner", "heuristic"])
    seconds = time.perf_counter() - t
    manifest = json.loads((out / "manifest.json").read_text())
    if code != 0 or not (out / "result.svg").exists():
        raise RuntimeError(f"{planner} run on {image} failed ({code}): {manifest.get('reason')}")
    return manifest, seconds


def layer_renders(svg: Path) -> tuple[list[str], list[np.ndarray]]:
    """Each layer of a layered SVG rendered alone by resvg: ids and straight RGBA (H, W, 4) in [0, 1]."""
    doc = read_svg(svg)
    return ([layer.id for layer in doc.layers],
            [resvg_render(to_svg_string(SvgDocument(doc.width, doc.height, [layer])), doc.width, doc.height)
             for layer in doc.layers])


def render_over_white(svg: Path) -> np.ndarray:
    return resvg_render(svg.read_text(), WIDTH, HEIGHT, background="#ffffff")[..., :3]


def moved_render(svg: Path, layer: str, dx: int, dy: int, out: Path) -> np.ndarray:
    """``amodal-agent edit SVG -o OUT --layer L --move DX DY``, rendered by resvg over white."""
    with contextlib.redirect_stderr(io.StringIO()):  # reader warnings, if any, are not the bench's output
        code = cli(["edit", str(svg), "-o", str(out), "--layer", layer, "--move", str(dx), str(dy), "--quiet"])
    if code != 0:
        raise RuntimeError(f"edit --move of {layer} in {svg} failed ({code})")
    return render_over_white(out)


def raster_layers(run: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The run's raster layers (``layers/*.png``, what the peel cut before vectorizing) as straight RGBA
    in [0, 1] on the final canvas, and where the frame sits on that canvas."""
    canvas = json.loads((run / "manifest.json").read_text())["canvas"]
    pngs = sorted((run / "layers").glob("*.png"))
    return np.array(canvas["offset"]), [np.asarray(Image.open(p).convert("RGBA"), np.float32) / 255 for p in pngs]


def _in_frame(rgba: np.ndarray, offset: np.ndarray, dx: int = 0, dy: int = 0) -> np.ndarray:
    ox, oy = int(offset[0]), int(offset[1])
    return shift(rgba, dx, dy)[oy:oy + HEIGHT, ox:ox + WIDTH]


def raster_move(offset: np.ndarray, layers: list[np.ndarray], index: int, dx: int, dy: int) -> np.ndarray:
    """The raster layers composited over white with layer ``index`` moved (the raster twin of edit --move)."""
    out = np.ones((HEIGHT, WIDTH, 3))
    for i, layer in enumerate(layers):
        x = _in_frame(layer, offset, *((dx, dy) if i == index else (0, 0)))
        out = x[..., :3] * x[..., 3:] + out * (1 - x[..., 3:])
    return out


def score_scene(scene: Scene, run: Path, raster: bool = False) -> dict:
    """Every figure of the oracle-driven run of one scene, plus the images for its contact sheet
    (``raster``: of the raster layers the peel cut, before vectorizing, with moves composited here)."""
    if raster:
        offset, full = raster_layers(run)
        ids, renders = [], [_in_frame(x, offset) for x in full]
    else:
        ids, renders = layer_renders(run / "result.svg")
    matches = match_layers([r[..., 3] for r in renders[1:]], [o.alpha_frame for o in scene.objects])
    per_obj, moves = [], []
    for k, obj in enumerate(scene.objects):
        li, score = matches.get(k, (None, 0.0))
        hidden = bool(((obj.alpha_frame > 0.5) & ~(obj.visible_frame > 0.5)).any())
        row = {"name": obj.name, "fill": obj.fill, "cut": obj.cut, "hidden": hidden, "iou": score,
               "recall": 0.0 if hidden else math.nan, "visible": float(obj.visible_frame.sum() / obj.alpha_frame.sum())}
        row |= dict.fromkeys(("spill", "psnr_vis", "psnr_hid", "psnr_hid_cov", "move"), math.nan)
        dx, dy = move_for(obj)
        truth_moved = composite(scene, {k: (dx, dy)})
        modal = modal_move(scene.image, obj.visible_frame, dx, dy)
        row["modal"] = psnr(modal, truth_moved)  # the baseline needs no layer
        ours = None
        if li is not None:
            row |= layer_metrics(renders[1 + li], obj)
            ours = (raster_move(offset, full, 1 + li, dx, dy) if raster
                    else moved_render(run / "result.svg", ids[1 + li], dx, dy, run / f"moved-{k}.svg"))
            row["move"] = psnr(ours, truth_moved)
        per_obj.append(row)
        moves.append((truth_moved, ours, modal, (dx, dy)))
    flat = _over_white(renders) if raster else render_over_white(run / "result.svg")
    return {"objects": per_obj, "composite": psnr(flat, scene.image), "renders": renders, "matches": matches,
            "moves": moves}


def score_heuristic(scene: Scene, run: Path, raster: bool = False) -> dict:
    """Objects found and occlusion order of the heuristic planner's run."""
    if raster:
        offset, full = raster_layers(run)
        renders = [_in_frame(x, offset) for x in full]
    else:
        _, renders = layer_renders(run / "result.svg")
    matches = match_layers([r[..., 3] for r in renders[1:]], [o.alpha_frame for o in scene.objects])
    found = {k: li for k, (li, score) in matches.items() if score > 0.5}
    correct, pairs = order_pairs(scene, found)
    return {"layers": len(renders) - 1, "found": len(found), "correct": correct, "pairs": pairs, "renders": renders,
            "matches": matches,
            "composite": psnr(_over_white(renders) if raster else render_over_white(run / "result.svg"), scene.image)}


# --------------------------------------------------------------------------------------- matching

MOVES = ((36, 0), (-36, 0), (0, 36), (0, -36), (25, 25), (-25, 25), (25, -25), (-25, -25))


def match_layers(alphas: list[np.ndarray], fulls: list[np.ndarray]) -> dict[int, tuple[int, float]]:
    """Greedy matching by IoU (alpha > 0.5): truth object -> (layer index, IoU); unmatched objects absent."""
    scores = sorted(((iou(a > 0.5, f > 0.5), li, k) for li, a in enumerate(alphas) for k, f in enumerate(fulls)),
                    reverse=True)
    out: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for score, li, k in scores:
        if score > 0 and k not in out and li not in used:
            out[k] = (li, score)
            used.add(li)
    return out


def order_pairs(scene: Scene, found: dict[int, int]) -> tuple[int, int]:
    """(right, asked): found pairs whose true shapes overlap, and how many of them our layer order
    (later in the SVG = in front) stacks as the truth does (lower index = in front)."""
    right = asked = 0
    keys = sorted(found)
    for i, k in enumerate(keys):
        for j in keys[i + 1:]:
            if overlap_share(scene.objects[k].alpha, scene.objects[j].alpha) >= NO_OVERLAP:
                asked += 1
                right += int(found[k] > found[j])  # k < j: k is in front, so its layer must come later
    return right, asked


def move_for(obj: TruthObject) -> tuple[int, int]:
    """About 36 px in the direction that keeps most of the moved object in the frame."""
    return max(MOVES, key=lambda d: float(frame(shift(obj.alpha, *d)).sum()))


def modal_move(image: np.ndarray, visible: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The modal cut-out baseline: the visible pixels moved and pasted on top, the hole left white."""
    v = visible[..., None]
    holed = image * (1 - v) + v
    pasted, moved_v = shift(image * v, dx, dy), shift(v, dx, dy)
    return pasted + holed * (1 - moved_v)


# --------------------------------------------------------------------------------------- output


def _checker(h: int, w: int, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.where(((yy // cell + xx // cell) % 2)[..., None] == 0, 0.82, 1.0).repeat(3, -1)


def _tile(rgb: np.ndarray | None, label: str, alpha: np.ndarray | None = None) -> Image.Image:
    """One frame-sized picture (over a checkerboard when it has alpha) with a label on a dark strip."""
    if rgb is None:
        rgb = np.ones((HEIGHT, WIDTH, 3))
    if alpha is not None:
        rgb = rgb * alpha[..., None] + _checker(HEIGHT, WIDTH) * (1 - alpha[..., None])
    im = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    if label:
        draw.rectangle([0, 0, 6 * len(label) + 4, 11], fill=(0, 0, 0))
        draw.text((2, 0), label, fill=(255, 255, 255))
    return im


def contact_sheet(scene: Scene, res: dict, heu: dict) -> Image.Image:
    """Rows: truth (scene, each object); ours (composite, matched layers, background); each object
    moved in the truth, in ours, and by the modal cut-out; the heuristic planner's layers.
    Column k+1 is truth object k (front-most first)."""
    objs, n = scene.objects, len(scene.objects)
    rows: list[list[Image.Image]] = [[_tile(scene.image, "scene")]
                                     + [_tile(o.rgb_frame, o.name, o.alpha_frame) for o in objs]]
    for who, r in (("oracle", res), ("heuristic", heu)):
        renders, matches = r["renders"], r["matches"]
        row = [_tile(_over_white(renders), f"{who} {r['composite']:.1f} dB")]
        for k in range(n):
            li, score = matches.get(k, (None, 0.0))
            row.append(_tile(renders[1 + li][..., :3], f"IoU {score:.2f}", renders[1 + li][..., 3]) if li is not None
                       else _tile(None, "no layer"))
        used = {li for li, _ in matches.values()}
        row += [_tile(x[..., :3], "extra layer", x[..., 3]) for li, x in enumerate(renders[1:]) if li not in used]
        row.append(_tile(renders[0][..., :3], "background", renders[0][..., 3]))
        rows.append(row)
        if who == "oracle":
            for j, what in enumerate(("truth moved", "ours moved", "modal cut-out")):
                tiles = [_tile(None, what)]
                for k, (truth, ours, modal, (dx, dy)) in enumerate(r["moves"]):
                    img = (truth, ours, modal)[j]
                    o = r["objects"][k]
                    label = (f"move {dx},{dy}", f"{o['move']:.1f} dB", f"{o['modal']:.1f} dB")[j]
                    tiles.append(_tile(img, label if img is not None else "no layer"))
                rows.append(tiles)
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * (WIDTH + 4) + 4, len(rows) * (HEIGHT + 4) + 4), (60, 60, 60))
    for y, row in enumerate(rows):
        for x, tile in enumerate(row):
            sheet.paste(tile, (4 + x * (WIDTH + 4), 4 + y * (HEIGHT + 4)))
    return sheet


def _over_white(renders: list[np.ndarray]) -> np.ndarray:
    """The layers' composite over white (for the sheet; figures use resvg on the whole file)."""
    out = np.ones((HEIGHT, WIDTH, 3))
    for r in renders:
        out = r[..., :3] * r[..., 3:] + out * (1 - r[..., 3:])
    return out


def _f(v: float, width: int = 6, places: int = 2) -> str:
    return f"{'-':>{width}}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{width}.{places}f}"


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0, help="scene seed; also the runs' --seed")
    ap.add_argument("--paths", type=int, default=256, help="--paths of each run")
    ap.add_argument("--iters", type=int, default=None, help="--iters of each run [default: the CLI's]")
    ap.add_argument("--box", default="visible", choices=["visible", "amodal"],
                    help="the oracle's segment box: the object's visible part (default) or its whole shape")
    ap.add_argument("--raster", action="store_true",
                    help="score the raster layers the peel cut (before vectorizing; the runs use --paths 16 "
                         "--iters 1 to be quick): a development mode, its figures are not the product's")
    ap.add_argument("--planners", default="oracle,heuristic", help="which planners to run (development)")
    ap.add_argument("--only", default=None, help="comma-separated scene indices to run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "peel"), help="run folders")
    ap.add_argument("--sheets", default=str(ROOT / "bench" / "results" / "peel"),
                    help="folder for the contact sheets ('' for none)")
    args = ap.parse_args()
    if args.raster:
        args.paths, args.iters = 16, 1
    out, sheets = Path(args.out), Path(args.sheets) if args.sheets else None
    if sheets is not None:
        sheets.mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(args.scenes, args.seed)
    if args.only:
        scenes = [scenes[int(i)] for i in args.only.split(",")]
    iters = args.iters if args.iters is not None else f"{VectorizeOptions(paths=args.paths).steps} (CLI default)"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {args.scenes} scenes, seed {args.seed}, "
          f"{WIDTH}x{HEIGHT} px; each run --paths {args.paths} --iters {iters}; layers measured as resvg renders them")
    rows, backends, t_all = [], {}, time.perf_counter()
    for scene in scenes:
        folder = out / scene.name
        folder.mkdir(parents=True, exist_ok=True)
        image = folder / "scene.png"
        image.write_bytes(encode_png(scene.image))
        if "oracle" in args.planners:
            m_vlm, s_vlm = peel(image, folder / "oracle", args, "vlm", scene)
            res = score_scene(scene, folder / "oracle", args.raster)
        else:
            m_vlm, s_vlm = {"result": {"layers": 1}}, math.nan
            res = {"objects": [dict.fromkeys(("iou", "recall", "spill", "psnr_vis", "psnr_hid", "psnr_hid_cov", "move",
                                              "modal", "visible"), math.nan) | {"name": o.name, "fill": o.fill,
                                              "cut": o.cut, "hidden": False} for o in scene.objects],
                   "composite": math.nan, "renders": [np.zeros((HEIGHT, WIDTH, 4))], "matches": {}, "moves": []}
        if "heuristic" not in args.planners:
            m_heu, s_heu = {}, math.nan
            heu = {"layers": 0, "found": 0, "correct": 0, "pairs": 0, "renders": res["renders"][:1], "matches": {},
                   "composite": math.nan}
        else:
            m_heu, s_heu = peel(image, folder / "heuristic", args, "heuristic", scene)
            heu = score_heuristic(scene, folder / "heuristic", args.raster)
        for m in (m_vlm, m_heu):
            for tool, names in m.get("backends", {}).items():
                backends.setdefault(tool, set()).update(names)
        res |= {"sec": s_vlm, "heuristic": heu | {"sec": s_heu}, "layers": m_vlm["result"]["layers"] - 1}
        rows.append(res)
        if sheets is not None:
            contact_sheet(scene, res, heu).save(sheets / f"{scene.name}.png", optimize=True)
        print(f"{scene.name}: oracle run {s_vlm:.1f} s, heuristic run {s_heu:.1f} s", file=sys.stderr, flush=True)
    report(args, scenes, rows, backends)
    print(f"total {time.perf_counter() - t_all:.0f} s" + (f"; contact sheets in {sheets}/" if sheets else ""))


# (key, header, width, decimals) of the per-object figures, in the order printed
COLUMNS = (("iou", "IoU", 5, 2), ("recall", "hidRec", 6, 2), ("spill", "spill", 5, 2), ("psnr_vis", "PSNRvis", 7, 2),
           ("psnr_hid", "PSNRhid", 7, 2), ("psnr_hid_cov", "hidCov", 6, 2))


def _figures(objs: list[dict]) -> str:
    return " ".join(_f(_nanmean([o[k] for o in objs]), w, d) for k, _, w, d in COLUMNS)


def report(args: argparse.Namespace, scenes: list[Scene], rows: list[dict], backends: dict[str, set]) -> None:
    """The tables: every object, then every scene with the heuristic planner beside it, then means."""
    print("backends: " + "; ".join(f"{tool}: {', '.join(sorted(n))}" for tool, n in sorted(backends.items())))
    print(f"oracle = scripted model: segment on the true {args.box} box, pad_canvas when cut, inpaint; front to back")
    figures = " ".join(f"{h:>{w}}" for _, h, w, _ in COLUMNS)
    print()
    head = f"{'scene':>8} {'object':>26} {'fill':>6} {'cut':>3} {'vis%':>4} {figures} {'move':>6} {'modal':>6}"
    print(head + "\n" + "-" * len(head))
    for scene, res in zip(scenes, rows, strict=True):
        for o in res["objects"]:
            print(f"{scene.name:>8} {o['name'][:26]:>26} {o['fill']:>6} {'yes' if o['cut'] else '':>3} "
                  f"{100 * o['visible']:4.0f} {_figures([o])} {_f(o['move'])} {_f(o['modal'])}")
    print()
    head = (f"{'scene':>8} {'bg':>9} {'obj':>3} {'lay':>3} {figures} {'comp':>6} {'move':>6} {'modal':>6} {'sec':>5} | "
            f"{'heur: lay':>9} {'found':>5} {'order':>5} {'comp':>6} {'sec':>5}")
    print(head + "\n" + "-" * len(head))
    for scene, r in zip(scenes, rows, strict=True):
        o, h = r["objects"], r["heuristic"]
        print(f"{scene.name:>8} {scene.background_kind:>9} {len(o):3d} {r['layers']:3d} {_figures(o)} "
              f"{_f(r['composite'])} {_f(_nanmean([x['move'] for x in o]))} {_f(_nanmean([x['modal'] for x in o]))} "
              f"{r['sec']:5.1f} | {h['layers']:9d} {h['found']:3d}/{len(o)} {h['correct']:2d}/{h['pairs']:<2d} "
              f"{_f(h['composite'])} {h['sec']:5.1f}")
    print("-" * len(head))
    objs, hs = [o for r in rows for o in r["objects"]], [r["heuristic"] for r in rows]
    move, modal = _nanmean([o["move"] for o in objs]), _nanmean([o["modal"] for o in objs])
    found, right, pairs = (sum(h[k] for h in hs) for k in ("found", "correct", "pairs"))
    print(f"{'mean':>8} {'':>9} {len(objs):3d} {'':>3} {_figures(objs)} {_f(_nanmean([r['composite'] for r in rows]))} "
          f"{_f(move)} {_f(modal)} {_nanmean([r['sec'] for r in rows]):5.1f} | "
          f"{_nanmean([h['layers'] for h in hs]):9.1f} {found:3d}/{len(objs)} {right:2d}/{pairs:<2d} "
          f"{_f(_nanmean([h['composite'] for h in hs]))} {_nanmean([h['sec'] for h in hs]):5.1f}")
    missed = sum(1 for o in objs if math.isnan(o["psnr_vis"]))
    print(f"means over all {len(objs)} objects ({missed} without a matching layer: IoU 0, hidden recall 0); hidRec, "
          f"PSNRhid, hidCov over the {sum(o['hidden'] for o in objs)} objects with a hidden part; comp per scene")
    print("PSNRvis/PSNRhid: the layer over white vs the true object over white on its visible/hidden part (uncovered "
          "pixels count); hidCov: PSNRhid on the hidden pixels the layer covers")
    print(f"edit-move: ours {_f(move, 0)} dB vs modal cut-out {_f(modal, 0)} dB; heuristic planner found {found} of "
          f"{len(objs)} objects (IoU > 0.5), stacking right on {right} of {pairs} overlapping found pairs")
    print(targets(objs, move - modal, found, right, pairs))


def targets(objs: list[dict], gain: float, found: int, right: int, pairs: int) -> str:
    """Issue 9's targets against the unrounded means (the table's two decimals can read 0.044 as 0.04);
    the composite's target is a comparison with an earlier run, so it is not judged here."""
    iou, recall, spill = (_nanmean([o[k] for o in objs]) for k in ("iou", "recall", "spill"))
    checks = [(f"IoU {iou:.3f} >= 0.93", iou >= 0.93), (f"hidden recall {recall:.3f} >= 0.92", recall >= 0.92),
              (f"spill {spill:.3f} <= 0.04", spill <= 0.04), (f"move {gain:+.2f} dB over modal >= +9", gain >= 9),
              (f"heuristic found {found}/{len(objs)} >= 2/3", 3 * found >= 2 * len(objs)),
              (f"order {right}/{pairs} >= 80%", pairs > 0 and right >= 0.8 * pairs)]
    return "targets (issue 9): " + "; ".join(f"{text} {'met' if ok else 'NOT met'}" for text, ok in checks)


if __name__ == "__main__":
    main()
