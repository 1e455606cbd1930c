"""Shape continuation alone: how well ``complete_mask`` guesses a hidden part from a perfect visible mask.

``peel.py`` scores whole runs, where segmentation, completion, matting and vectorizing all add their
errors. This isolates the continuation: on the same seeded scenes (``peel_scenes.py``), every object
that something hides (an object in front, or the frame) is given its true visible mask and the true
occluded region (the full shapes of the objects in front, and the canvas beyond the frame), and its
completed mask is scored against its full shape inside the frame. Beside it, two references: the
modal mask (no continuation) and the visible part's convex hull (the least a convex object can be).

    python bench/completion.py                  # 40 scenes, seed 0 (the tuning set); seconds
    python bench/completion.py --seed 1         # the report set
"""

from __future__ import annotations

import argparse
import math
import time

import cv2
import numpy as np
from common import ROOT  # noqa: F401  (puts the repository on sys.path)
from peel_scenes import HEIGHT, MARGIN, WIDTH, frame, iou, make_scenes

from tools.shape_completion import complete_mask


def convex_hull(visible: np.ndarray, occluded: np.ndarray) -> np.ndarray:
    """The visible part's convex hull, kept to the visible part and the occluded region."""
    out = np.zeros(visible.shape, np.uint8)
    cv2.fillPoly(out, [cv2.convexHull(cv2.findNonZero(visible.astype(np.uint8)))], 1)
    return visible | (out.astype(bool) & occluded)


METHODS = {"modal": lambda visible, occluded: visible, "convex hull": convex_hull, "ours": complete_mask}


def cases(scenes: int, seed: int):
    """(scene, object, visible, occluded, full) on the extended canvas, for every partly hidden object."""
    for scene in make_scenes(scenes, seed):
        shape = scene.objects[0].alpha.shape
        inside = np.zeros(shape, bool)
        inside[MARGIN:MARGIN + HEIGHT, MARGIN:MARGIN + WIDTH] = True
        front = np.zeros(shape, bool)
        for obj in scene.objects:
            full = obj.alpha > 0.5
            visible = np.zeros(shape, bool)
            visible[inside] = (obj.visible_frame > 0.5).ravel()
            occluded = front | ~inside
            if (full & occluded).any() and visible.sum() >= 8:
                yield scene, obj, visible, occluded, full
            front |= full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0, help="scene seed (0: the tuning set, 1: the report set)")
    ap.add_argument("--objects", action="store_true", help="also print every object's figures")
    args = ap.parse_args()
    scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    count = 0
    for scene, obj, visible, occluded, full in cases(args.scenes, args.seed):
        count += 1
        truth = frame(full)
        hidden = truth & ~frame(visible)
        row = []
        for name, method in METHODS.items():
            t = time.perf_counter()
            mask = frame(method(visible, occluded))
            seconds[name] += time.perf_counter() - t
            fig = (iou(mask, truth), float((mask & hidden).sum() / hidden.sum()) if hidden.any() else math.nan,
                   float((mask & ~truth).sum() / truth.sum()))
            scores[name].append(fig)
            row.append(fig)
        if args.objects:
            print(f"{scene.name} {obj.name[:26]:>26} " + " | ".join(f"{a:.2f} {b:4.2f} {c:.2f}" for a, b, c in row))
    print(f"{count} partly hidden objects in {args.scenes} scenes (seed {args.seed}); given the true visible mask "
          f"and the true occluded region; scored inside the frame")
    print(f"{'method':>12} {'IoU':>6} {'hidRec':>6} {'spill':>6} {'ms/obj':>7}")
    for name, rows in scores.items():
        a = np.array(rows)
        print(f"{name:>12} {a[:, 0].mean():6.3f} {np.nanmean(a[:, 1]):6.3f} {a[:, 2].mean():6.3f} "
              f"{1000 * seconds[name] / max(count, 1):7.1f}")
    print("hidRec over the objects with a hidden part inside the frame; spill: mask outside the full shape, "
          "relative to its area")


if __name__ == "__main__":
    main()
