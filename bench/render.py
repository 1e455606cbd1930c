"""Renderer speed: ours, the reference prototype and DiffVG (when importable), side by side.

For each scene (paths of radius 5-40 px, uniformly placed) it prints forward and forward+backward
milliseconds per iteration (median over the timed iterations, minimum in brackets) and peak memory
(CPU: the process's peak RSS growth; CUDA: peak allocated). Every (renderer, scene, device) runs in
a fresh subprocess so peak memory is its own.

    python bench/render.py                       # CPU, 2 threads, all scenes
    python bench/render.py --device cuda         # on a GPU machine
    python bench/render.py --prototype ../shared/reference/renderer-prototype

"area-sum" is ours with exact coverage at self-crossings off (what the renderer was before), so the
cost of exactness is read off one run; "every-block" is ours compositing every block of each path's
box, also those its outline never enters (what the renderer did before it skipped them); "fit" is
a 1024-path fit of a photo (tests/data), where outlines fold and cross far more than in random scenes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENES = [(256, 256), (1024, 512), (2048, 512)]
TARGETS_CPU_MS = {(256, 256): 50, (1024, 512): 200}
DEFAULT_PROTOTYPE = ROOT.parent / "shared" / "reference" / "renderer-prototype"


FITTED = ROOT / "tests" / "data" / "fit-cat-1024.svg"  # a real fit: slivers and folds, unlike random blobs


def _scene(paths: int, size: int, device: str):
    """Random blobs, or with paths == 0 the fitted image (which is 256 px wide, not square)."""
    import torch

    sys.path.insert(0, str(ROOT))
    if paths == 0:
        from tools.svg import read_svg

        doc = read_svg(FITTED)
        ps = doc.all_paths()
        pts, cols = ps.points.reshape(ps.num_paths, -1, 2), ps.colors
        height, width = doc.height, doc.width
    else:
        from tools.vectorize.scenes import random_blobs

        pts, cols = random_blobs(paths, size, size, radius=(5, 40), seed=0)
        height = width = size
    target = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(1))
    return pts.to(device), cols.to(device), target.to(device)


def _ours(pts, cols, height, width, bg, exact=True):
    from tools.vectorize import render

    return lambda: render(pts, cols, height, width, background=bg, exact=exact)[..., :3]


def _prototype(pts, cols, height, width, bg, path: str):
    sys.path.insert(0, path)
    import raster6  # the prototype's final renderer

    return lambda: raster6.render(pts, cols, height, width, background=bg)


def _diffvg(pts, cols, size, bg):
    import pydiffvg
    import torch

    pydiffvg.set_use_gpu(pts.is_cuda)
    k = pts.shape[1] // 3
    shapes, groups = [], []
    for i in range(pts.shape[0]):
        shapes.append(pydiffvg.Path(num_control_points=torch.full((k,), 2, dtype=torch.int32),
                                    points=pts[i], is_closed=True, stroke_width=torch.tensor(0.0)))
        groups.append(pydiffvg.ShapeGroup(shape_ids=torch.tensor([i]), fill_color=cols[i]))
    render = pydiffvg.RenderFunction.apply

    def run():
        args = pydiffvg.RenderFunction.serialize_scene(size, size, shapes, groups)
        img = render(size, size, 2, 2, 0, None, *args)
        return img[..., :3] * img[..., 3:] + bg * (1 - img[..., 3:])

    return run


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from tools.vectorize import tune_cpu_allocator

    tuned = tune_cpu_allocator() if args.device == "cpu" else False
    pts, cols, target = _scene(args.paths, args.size, args.device)
    pts.requires_grad_(True)
    cols.requires_grad_(True)
    bg = torch.ones(3, device=args.device)
    height, width = target.shape[:2]
    if args.renderer == "every-block":
        from fit_ab import VARIANTS

        VARIANTS["every-block"]()
    if args.renderer in ("ours", "area-sum", "every-block"):
        fn = _ours(pts, cols, height, width, bg, exact=args.renderer != "area-sum")
    elif args.renderer == "prototype":
        fn = _prototype(pts, cols, height, width, bg, args.prototype)
    else:
        fn = _diffvg(pts, cols, args.size, bg)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated()
    fwd, both = [], []
    for i in range(args.warmup + args.iters):
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            fn()
        sync()
        t1 = time.perf_counter()
        loss = ((fn() - target) ** 2).mean()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        pts.grad = cols.grad = None
        if i >= args.warmup:
            fwd.append((t1 - t0) * 1e3)
            both.append((t2 - t1) * 1e3)
    if args.device == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base_gpu) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
    print(json.dumps({
        "fwd_ms": statistics.median(fwd), "fwd_min_ms": min(fwd),
        "fb_ms": statistics.median(both), "fb_min_ms": min(both),
        "peak_mb": peak_mb, "mallopt": tuned,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target machine has 2 cores)")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per scene")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of every renderer per scene, taken in turn; the median run is printed (a VM's "
                         "speed drifts over seconds, which renderers run one after another would read as theirs)")
    ap.add_argument("--prototype", default=str(DEFAULT_PROTOTYPE),
                    help="folder of the reference prototype (raster6.py); skipped when absent")
    ap.add_argument("--scenes", default=",".join(f"{p}x{s}" for p, s in SCENES) + ",fit",
                    help="comma-separated PATHSxSIZE list; 'fit' is a real 1024-path fit of a photo")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--renderer", default="ours", help=argparse.SUPPRESS)
    ap.add_argument("--paths", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    import importlib.util

    renderers = ["ours", "area-sum", "every-block"]
    notes = ["area-sum: ours with exact=False, the bare signed-area sum the renderer had before exact crossings",
             "every-block: ours compositing every block of each path's box, as before empty blocks were skipped"]
    if (Path(args.prototype) / "raster6.py").exists():
        renderers.append("prototype")
    else:
        notes.append(f"prototype: not found at {args.prototype}")
    if importlib.util.find_spec("pydiffvg") is not None:
        renderers.append("diffvg")
    else:
        notes.append("diffvg: pydiffvg does not import here (not on PyPI); its CPU build measured "
                     "1.4 s and 7.2 s on the first two scenes on this kind of machine (issue 2)")
    scenes = [(0, 256) if s == "fit" else tuple(int(v) for v in s.split("x")) for s in args.scenes.split(",")]
    import torch

    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else f", {args.threads} threads"))
    header = (f"{'scene':>14} {'renderer':>10} {'fwd ms':>16} {'fwd+bwd ms':>18} {'peak MB':>9} "
              f"{'vs ours':>8} {'target':>8}")
    print(header)
    print("-" * len(header))
    for paths, size in scenes:
        ours_fb = None
        runs: dict[str, list[dict]] = {name: [] for name in renderers}
        failed: dict[str, str] = {}
        for k in range(max(1, args.rounds)):
            for name in renderers[k % len(renderers):] + renderers[: k % len(renderers)]:  # each goes first in turn
                cmd = [sys.executable, __file__, "--worker", "--renderer", name, "--paths", str(paths),
                       "--size", str(size), "--device", args.device, "--threads", str(args.threads),
                       "--iters", str(args.iters), "--warmup", str(args.warmup), "--prototype", args.prototype]
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
                res = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if res.returncode != 0:
                    failed[name] = (res.stderr.strip().splitlines() or ["?"])[-1]
                else:
                    runs[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
        scene = "1024-path fit" if paths == 0 else f"{paths} @ {size}x{size}"
        for name in renderers:
            if not runs[name]:
                print(f"{scene:>14} {name:>10}  failed: {failed.get(name, '?')}")
                continue
            r = sorted(runs[name], key=lambda run: run["fb_ms"])[(len(runs[name]) - 1) // 2]
            if name == "ours":
                ours_fb = r["fb_ms"]
            ratio = f"{r['fb_ms'] / ours_fb:.2f}x" if ours_fb else ""
            target = TARGETS_CPU_MS.get((paths, size)) if args.device == "cpu" else None
            tgt = "" if target is None else (f"<={target}" + (" ok" if name == "ours" and r["fb_ms"] <= target else ""))
            print(f"{scene:>14} {name:>10} {r['fwd_ms']:>8.1f} ({r['fwd_min_ms']:>5.1f}) "
                  f"{r['fb_ms']:>9.1f} ({r['fb_min_ms']:>6.1f}) {r['peak_mb']:>9.0f} {ratio:>8} {tgt:>8}")
            if name == "area-sum" and ours_fb:
                print(f"{'':>14} {'':>10} exact coverage costs {ours_fb / r['fb_ms'] - 1:+.0%} fwd+bwd here")
            if name == "every-block" and ours_fb:
                print(f"{'':>14} {'':>10} skipping empty blocks saves {1 - ours_fb / r['fb_ms']:.0%} fwd+bwd here")
    for n in notes:
        print(f"note: {n}")
    print("columns: median (minimum) over the timed iterations; 'vs ours' = that renderer's fwd+bwd / ours; "
          "the cost of exactness is ours / area-sum")


if __name__ == "__main__":
    main()
