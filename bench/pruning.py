"""Pruning criteria compared on a fitted SVG, as in the paper's supplementary table.

Removes the 10 / 20 / 30 % of paths that each criterion ranks lowest (occlusion-aware visible
alpha, polygon area, opacity) and prints PSNR / SSIM of the pruned SVG as resvg renders it against
the photo, and the time each criterion took to score all paths.

    python bench/pruning.py                              # fits astronaut (1024 paths) first
    python bench/pruning.py --svg bench/out/fidelity/astronaut-ours-1024.svg --photo astronaut
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import load_photo, measure, rgba_tensor

from tools.svg import SvgDocument, SvgLayer, parse_svg, to_svg_string
from tools.vectorize import tune_cpu_allocator
from tools.vectorize.alv import fit_layer
from tools.vectorize.options import VectorizeOptions
from tools.vectorize.prune import lowest, prune_scores
from tools.vectorize_file import result_document

METHODS = ("occlusion", "area", "opacity")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", default="astronaut")
    ap.add_argument("--svg", help="a fitted SVG of that photo (default: fit one now)")
    ap.add_argument("--paths", type=int, default=1024, help="budget when fitting")
    ap.add_argument("--fractions", default="0.1,0.2,0.3")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    photo = load_photo(args.photo)
    h, w = photo.shape[:2]
    default_svg = Path(__file__).parent / "out" / "fidelity" / f"{args.photo}-ours-{args.paths}.svg"
    source = Path(args.svg) if args.svg else default_svg
    if source.exists():
        doc = parse_svg(source.read_text())
        print(f"fitted SVG: {source}")
    else:
        res = fit_layer(rgba_tensor(photo), None, VectorizeOptions(paths=args.paths, device="cpu"))
        doc = result_document(res, args.photo)
        print(f"fitted {args.photo} now: {res.num_paths} paths in {res.seconds:.1f} s")
    paths = doc.all_paths()
    k = int(paths.segment_counts[0])
    if not bool((paths.segment_counts == k).all()) or paths.segment_counts.numel() != paths.num_paths:
        raise SystemExit("pruning bench expects one closed outline of equal length per path (our own SVGs)")
    points = paths.points.float().reshape(paths.num_paths, 3 * k, 2)
    colors = paths.colors.float()
    base = measure(to_svg_string(doc), photo)
    print(f"{args.photo} {w}x{h}, {paths.num_paths} paths: PSNR {base['psnr']:.2f} dB, SSIM {base['ssim']:.4f}")
    head = f"{'criterion':>10} {'pruned':>7} {'paths':>6} {'PSNR':>7} {'dPSNR':>7} {'SSIM':>7} {'score ms':>9}"
    print(head)
    print("-" * len(head))
    for method in METHODS:
        t = time.perf_counter()
        scores = prune_scores(points, colors, h, w, method)
        ms = (time.perf_counter() - t) * 1e3
        for fraction in (float(f) for f in args.fractions.split(",")):
            drop = set(lowest(scores, fraction).tolist())
            keep = [i for i in range(paths.num_paths) if i not in drop]
            pruned = SvgDocument(doc.width, doc.height, [SvgLayer(doc.layers[0].id, doc.layers[0].label,
                                                                   paths.select(keep))])
            r = measure(to_svg_string(pruned), photo)
            print(f"{method:>10} {fraction:>6.0%} {len(keep):6d} {r['psnr']:7.2f} {r['psnr'] - base['psnr']:7.2f} "
                  f"{r['ssim']:7.4f} {ms:9.1f}", flush=True)


if __name__ == "__main__":
    main()
