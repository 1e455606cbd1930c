"""`amodal-agent batch` with 1 worker and with 2 on this machine: photos per minute and CPU use.

    python bench/batch.py [--paths 128] [--iters 60]

Eight photos from scikit-image at 256 px, the heuristic planner (no model server), the CPU defaults
but for --paths/--iters (small, so the bench runs in minutes). Each setting runs in a fresh batch
folder and its own local Ray; the CPU figure is the machine's busy share over the batch's wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from common import load_photo
from PIL import Image

from agent.cli import main

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "cat", "immunohistochemistry", "retina"]


def write_photos(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in PHOTOS:
        Image.fromarray((load_photo(name, 256) * 255).round().astype(np.uint8)).save(folder / f"{name}.png")


def one(photos: Path, out: Path, workers: int, paths: int, iters: int) -> tuple[float, float, int]:
    before = psutil.cpu_times()
    start = time.perf_counter()
    code = main(["batch", str(photos), "--out", str(out), "--workers", str(workers), "--planner", "heuristic",
                 "--paths", str(paths), "--iters", str(iters), "--quiet"])
    seconds = time.perf_counter() - start
    after = psutil.cpu_times()
    busy = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "nice"))
    total = busy + (after.idle - before.idle)
    return seconds, busy / total if total else 0.0, code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=128)
    parser.add_argument("--iters", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        write_photos(photos)
        print(f"{len(PHOTOS)} photos at 256 px, --planner heuristic --paths {args.paths} --iters {args.iters}, "
              f"{psutil.cpu_count()} cores")
        results = {}
        for workers in (1, 2):
            seconds, cpu, code = one(photos, Path(tmp) / f"out-{workers}", workers, args.paths, args.iters)
            results[workers] = seconds
            print(f"  {workers} worker{'s' if workers > 1 else ' '}: {seconds:6.1f} s, "
                  f"{len(PHOTOS) / seconds * 60:5.2f} photos/min, CPU busy {cpu:5.1%}, exit {code}", flush=True)
        print(f"  2 workers / 1 worker: {results[1] / results[2]:.2f}x the photos per minute")
    sys.exit(0)
