"""How well each segmenter cuts the objects of recorded peel runs (issue 9, step 5), in seconds.

A layer's shape is mostly decided by two steps: ``segment`` (the visible part) and the completion
behind the layers in front. ``bench/peel.py`` judges the whole peel, minutes per seed; this replays
only the first step. It reads the trace of each oracle run that ``bench/peel.py --out DIR`` left
(every ``segment`` call's residual image, box and keywords, and the canvas padding so far), hands
the same inputs to each segmenter, and scores the mask against the object's true visible part
(``bench/peel_scenes.py`` regenerates the scene from the run's seed):

* miss: the visible part the mask leaves out, as a share of it;
* leak: what the mask takes that the photo shows as something else (background, or an object behind
  it), as a share of the visible part; pixels that front objects cover are not counted, since the
  mask may rightly go on under them;
* bad: calls whose miss and leak add up to over 0.1.

The residuals are those the run's own segmenter left, so a segmenter that is not the run's is judged
on the peel it would not quite have had; the run's own gives the figures its peel had.

    python bench/peel.py --raster --planners oracle --seed 0 --out runs/0 --sheets ''
    python bench/segment_replay.py runs/0 runs/2            # every segmenter that runs here
    python bench/segment_replay.py runs/0 --segmenter grabcut --worst 20
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import ROOT  # noqa: F401  (puts the repository on sys.path)
from peel_scenes import HEIGHT, WIDTH, RecordedRun, recorded_runs

from tools.segment import SEGMENTERS, box_from_relative


@dataclass
class Call:
    """One recorded ``segment`` call of an oracle run, and the truth it is judged on (frame pixels)."""

    label: str  # "seed 0 scene-03 #1 photo-textured triangle"
    image: np.ndarray  # the residual the call saw (on the canvas of that moment)
    box: tuple[int, int, int, int]  # pixel box on that canvas
    keywords: list[str]
    seed: int  # the run's segment seed (GrabCut's k-means)
    offset: tuple[int, int]  # where the photo's frame sits on that canvas
    visible: np.ndarray  # (HEIGHT, WIDTH) bool: the object's true visible part
    front: np.ndarray  # (HEIGHT, WIDTH) bool: what the objects in front of it show


def recorded_calls(run: RecordedRun) -> list[Call]:
    """The ``segment`` calls of one oracle run, in order: the oracle segments each object once, front
    to back, so the k-th call is the k-th object."""
    calls, residual, offset = [], None, (0, 0)
    front = np.zeros((HEIGHT, WIDTH), bool)
    objects, seed = run.scene.objects, run.seeds["run"]
    for event in run.events:
        kind, payload = event["type"], event["payload"]
        if kind == "artifact" and payload.get("kind") in ("input", "residual"):
            residual = payload["id"]
        elif kind == "tool_result" and payload["name"] == "pad_canvas" and "padding" in payload["result"]:
            pad = payload["result"]["padding"]
            offset = (offset[0] + pad["left"], offset[1] + pad["top"])
        elif kind == "tool_call" and payload["name"] == "segment" and len(calls) < len(objects):
            obj = objects[len(calls)]
            image = run.artifact(residual, "RGB")
            args = payload["arguments"]
            box = box_from_relative(args["bbox_2d"], image.shape[1], image.shape[0])
            visible = obj.visible_frame > 0.5
            calls.append(Call(f"seed {seed} {run.folder.parent.name} #{len(calls)} {obj.name}", image, box,
                              list(args.get("keywords", [])), run.seeds["segment"], offset, visible, front.copy()))
            front |= visible
    return calls


def score(mask: np.ndarray, call: Call) -> tuple[float, float]:
    """(miss, leak) of a canvas mask, in the photo's frame."""
    ox, oy = call.offset
    mask = mask[oy:oy + HEIGHT, ox:ox + WIDTH]
    seen = call.visible.sum()
    return float((call.visible & ~mask).sum() / seen), float((mask & ~call.visible & ~call.front).sum() / seen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="folders bench/peel.py --out wrote")
    ap.add_argument("--segmenter", default="all", help=f"one of {', '.join(SEGMENTERS)}, or all that run here")
    ap.add_argument("--device", default="auto", help="device of the model segmenters")
    ap.add_argument("--worst", type=int, default=10, help="how many of the worst calls to list per segmenter")
    args = ap.parse_args()
    runs = recorded_runs(args.runs)
    if not runs:
        ap.error(f"no oracle runs under {', '.join(map(str, args.runs))} (bench/peel.py --out DIR writes them)")
    calls = [c for run in runs for c in recorded_calls(run)]
    names = list(SEGMENTERS) if args.segmenter == "all" else [args.segmenter]
    print(f"{len(calls)} segment calls of {len(runs)} oracle runs")
    print(f"{'segmenter':>10} {'miss':>7} {'leak':>7} {'bad':>8} {'ms/call':>8}")
    worst: dict[str, list[tuple[float, float, str]]] = {}
    for name in names:
        if name not in SEGMENTERS:
            ap.error(f"unknown segmenter {name!r}; valid: all, {', '.join(SEGMENTERS)}")
        ok, why = SEGMENTERS[name].available()
        if not ok:
            print(f"{name:>10} not run: {why}")
            continue
        segmenter = SEGMENTERS[name](device=args.device)
        rows, started = [], time.perf_counter()
        for call in calls:
            mask = segmenter.segment(call.image, call.box, seed=call.seed, keywords=call.keywords).mask
            rows.append((*score(mask, call), call.label))
        ms = 1000 * (time.perf_counter() - started) / len(calls)
        figures = np.array([r[:2] for r in rows])
        bad = int((figures.sum(1) > 0.1).sum())
        print(f"{name:>10} {figures[:, 0].mean():7.4f} {figures[:, 1].mean():7.4f} {bad:>4}/{len(rows):<3} {ms:8.1f}")
        worst[name] = sorted(rows, key=lambda r: -(r[0] + r[1]))[:args.worst]
    for name, rows in worst.items():
        print(f"\nworst calls, {name} (miss, leak):")
        for miss, leak, label in rows:
            print(f"  {miss:5.3f} {leak:5.3f}  {label}")


if __name__ == "__main__":
    main()
