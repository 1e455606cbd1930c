"""Fit seconds and fidelity of the current code against a variant of it, the two taken in turn.

This VM's speed drifts by 10-30% over minutes, so two fits timed in separate runs of
``bench/fidelity.py`` differ by more than most changes save. Here each photo is fitted by both
variants one after the other (which goes first alternates), in one process, so drift falls on both
alike. A variant is the code as it was before a change, restored by a patch:

    python bench/fit_ab.py --variant every-block            # report set, 1024 and 256 paths
    python bench/fit_ab.py --variant every-block --photos tuning --budgets 256
    python bench/fit_ab.py --variant linear-steps --budgets 1024
    python bench/fit_ab.py --variant fused --photos tuning     # here the variant is the newer code
    python bench/fit_ab.py --variant coarse-0.3 --budgets 256
    python bench/fit_ab.py --variant coarse-0.3 --photos retina,hubble_deep_field@crop --size 512 --budgets 1024
    python bench/fit_ab.py --variant half-start --photos tuning
    python bench/fit_ab.py --variant six-segments
    python bench/fit_ab.py --variant six-segments --budgets 340 --variant-scale 0.75   # at equal bytes
    python bench/fit_ab.py --variant lr-final-0.1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from common import PHOTOS, TUNING, load_photo, measure, rgba_tensor

from tools.svg import to_svg_string
from tools.vectorize import composite, fusion, tune_cpu_allocator
from tools.vectorize.alv import fit_layer
from tools.vectorize.options import VectorizeOptions
from tools.vectorize_file import result_document


def _every_block() -> Callable[[], None]:
    """Composite every block of each path's box, as before blocks no outline enters were skipped."""
    live = composite._live_blocks
    composite._live_blocks = lambda *_: None
    return lambda: setattr(composite, "_live_blocks", live)


def _linear_steps() -> Callable[[], None]:
    """The step count as it was before 1024-path fits took 160 fewer steps: 300 + paths / 2."""
    steps = VectorizeOptions.steps
    VectorizeOptions.steps = property(lambda o: o.iters if o.iters is not None else 300 + o.paths // 2)
    return lambda: setattr(VectorizeOptions, "steps", steps)


OPTIONS: dict = {}  # VectorizeOptions settings a variant changes


def _setting(name: str, value: object) -> Callable[[], Callable[[], None]]:
    """A variant that is one ``VectorizeOptions`` setting, on top of the current code."""
    def apply() -> Callable[[], None]:
        OPTIONS[name] = value
        return lambda: OPTIONS.pop(name)
    return apply


VARIANTS: dict[str, Callable[[], Callable[[], None]]] = {
    "every-block": _every_block,
    "linear-steps": _linear_steps,
    "fused": _setting("fused", True),  # the renderer's elementwise stages compiled into fused kernels
    "coarse-0.3": _setting("coarse_until", 0.3),  # before 2026-11-30: 30% of a roomy fit's steps at half size
    "half-start": _setting("init_fraction", 0.5),  # before 2026-12-07: superpixels for half the ceiling
    "six-segments": _setting("segments", 6),  # six cubic segments per path (--segments 6), not four
    "lr-final-0.1": _setting("lr_final", 0.1),  # before 2026-12-07: learning rates decayed to a tenth, not a half
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS), help="the code to compare against")
    ap.add_argument("--photos", default="report", help="'report', 'tuning' or names, comma-separated")
    ap.add_argument("--budgets", default="1024,256", help="path ceilings, comma-separated")
    ap.add_argument("--size", type=int, default=256, help="longest side of each photo, px")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant-scale", type=float, default=1.0,
                    help="the variant's ceiling as a share of each budget: compare at equal bytes (six segments "
                    "hold 1.33x a path's bytes: --variant six-segments --variant-scale 0.75)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    photos = {"report": PHOTOS, "tuning": TUNING}.get(args.photos) or args.photos.split(",")
    budgets = [int(b) for b in args.budgets.split(",") if b]
    print(f"torch {torch.__version__}, {args.threads} CPU threads; 'now' = the current code, "
          f"'{args.variant}' = the variant; fidelity as resvg renders each written SVG")
    if args.variant == "fused":  # compiled once per process, before any timed fit
        print(f"fused stages compiled in {fusion.prepare():.1f} s (not in the fit seconds below)")
    print(f"{'photo':>24} {'paths':>5} {'code':>13} {'sec':>7} {'PSNR':>7} {'KB':>7}")
    rows: list[tuple[int, str, float, float, float]] = []
    for i, name in enumerate(photos):
        photo = load_photo(name, args.size)
        for budget in budgets:
            for code in (("now", args.variant) if i % 2 == 0 else (args.variant, "now")):
                undo = VARIANTS[code]() if code != "now" else (lambda: None)
                try:
                    t = time.perf_counter()
                    ceiling = budget if code == "now" else round(budget * args.variant_scale)
                    res = fit_layer(rgba_tensor(photo), None, VectorizeOptions(paths=ceiling, seed=args.seed,
                                                                               device="cpu", **OPTIONS))
                    sec = time.perf_counter() - t
                finally:
                    undo()
                got = measure(to_svg_string(result_document(res, name)), photo)
                rows.append((budget, code, sec, got["psnr"], got["kb"]))
                print(f"{name:>24} {ceiling:5d} {code:>13} {sec:7.2f} {got['psnr']:7.2f} {got['kb']:7.1f}", flush=True)
    for budget in budgets:
        mean = {}
        for code in ("now", args.variant):
            r = [x for x in rows if x[0] == budget and x[1] == code]
            mean[code] = statistics.mean(x[2] for x in r)
            print(f"{'mean':>24} {budget:5d} {code:>13} {mean[code]:7.2f} {statistics.mean(x[3] for x in r):7.2f}"
                  f" {statistics.mean(x[4] for x in r):7.1f}   slowest {max(x[2] for x in r):.2f} s")
        print(f"{'':>24} {budget:5d} now takes {mean['now'] / mean[args.variant] - 1:+.1%} of the variant's time")


if __name__ == "__main__":
    main()
