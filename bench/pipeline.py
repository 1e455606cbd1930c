"""The whole pipeline (heuristic planner) against plain vectorization and vtracer, side by side.

For each scikit-image photo at 256 px: ``amodal-agent PHOTO --planner heuristic`` with default
settings, then plain single-layer vectorization (``amodal-agent vectorize``'s core) and vtracer at
the same total path count. Every result is measured as resvg renders the written SVG against the
photo. The last column is what layering costs: layered PSNR minus plain vectorize PSNR.

    python bench/pipeline.py                     # five photos, about 10 minutes on 2 cores
    python bench/pipeline.py --photos coffee
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from common import PHOTOS, load_photo, measure, png_bytes, rgba_tensor, vtracer_svg

from agent.context import RunOptions
from agent.run import run_peel
from tools.svg import to_svg_string
from tools.vectorize import tune_cpu_allocator
from tools.vectorize.alv import fit_layer
from tools.vectorize.options import VectorizeOptions
from tools.vectorize_file import result_document

GAP_TARGET_DB = 1.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=",".join(PHOTOS))
    ap.add_argument("--paths", type=int, default=1024, help="the pipeline's whole-image path budget")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "pipeline"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {args.threads} threads; PSNR/SSIM of each written SVG as resvg renders it")
    head = (f"{'photo':>16} {'method':>18} {'PSNR':>7} {'SSIM':>7} {'layers':>6} {'paths':>6} {'sec':>6} "
            f"{'layered-plain':>13}")
    print(head)
    print("-" * len(head))
    gaps, rows = [], {"layered": [], "plain": [], "vtracer": []}
    for name in args.photos.split(","):
        photo = load_photo(name)
        src = out / f"{name}.png"
        src.write_bytes(png_bytes(photo))
        run_dir = out / f"{name}-run"
        shutil.rmtree(run_dir, ignore_errors=True)
        t = time.perf_counter()
        report = run_peel(RunOptions(image=src, out=run_dir, planner="heuristic", quiet=True,
                                     vectorize=VectorizeOptions(paths=args.paths, device="cpu")))
        layered_s = time.perf_counter() - t
        layered = measure((run_dir / "result.svg").read_text(), photo) | {"sec": layered_s,
                                                                           "layers": len(report.manifest["layers"])}
        total = layered["paths"]
        t = time.perf_counter()
        res = fit_layer(rgba_tensor(photo), None, VectorizeOptions(paths=total, device="cpu"))
        plain = measure(to_svg_string(result_document(res, name)), photo) | {"sec": time.perf_counter() - t,
                                                                             "layers": 1}
        svg, _, vt_s = vtracer_svg(photo, total)
        vt = measure(svg, photo) | {"sec": vt_s, "layers": 1}
        gap = layered["psnr"] - plain["psnr"]
        gaps.append(gap)
        for label, r in (("layered (ours)", layered), ("plain vectorize", plain), ("vtracer", vt)):
            extra = f"{gap:13.2f}" if label.startswith("layered") else ""
            print(f"{name:>16} {label:>18} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['layers']:6d} {r['paths']:6d} "
                  f"{r['sec']:6.1f} {extra}", flush=True)
        rows["layered"].append(layered)
        rows["plain"].append(plain)
        rows["vtracer"].append(vt)
    print("-" * len(head))
    for key, label in (("layered", "layered (ours)"), ("plain", "plain vectorize"), ("vtracer", "vtracer")):
        r = rows[key]
        print(f"{'mean':>16} {label:>18} {np.mean([x['psnr'] for x in r]):7.2f} {np.mean([x['ssim'] for x in r]):7.4f} "
              f"{np.mean([x['layers'] for x in r]):6.1f} {np.mean([x['paths'] for x in r]):6.0f} "
              f"{np.mean([x['sec'] for x in r]):6.1f}" + (f" {np.mean(gaps):13.2f}" if key == "layered" else ""))
    worst = min(gaps)
    print(f"target: layered within {GAP_TARGET_DB} dB of plain vectorize at the same budget: mean gap "
          f"{np.mean(gaps):.2f} dB, worst {worst:.2f} dB -> {'met' if -worst <= GAP_TARGET_DB else 'NOT met'}")


if __name__ == "__main__":
    main()
