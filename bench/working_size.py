"""What a larger working size costs: seconds per fitting step and peak memory of ALV at 256, 512
and 1024 px, by path count, on the CPU or a GPU, on one photo (a few steps each, not a whole fit).

    python bench/working_size.py                         # CPU, 2 threads
    python bench/working_size.py --device cuda --sizes 256,512,1024,2048

Each setting runs in a fresh subprocess so its peak memory is its own (CPU: peak RSS growth; CUDA:
peak allocated). A step is one render + backward + Adam update with exact crossings on, as in the
last part of a fit; the whole-fit estimate is steps x that (the default step count, ``VectorizeOptions.steps``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(size: int, paths: int, steps: int, device: str, threads: int) -> dict:
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from common import load_photo, rgba_tensor

    from tools.vectorize import tune_cpu_allocator
    from tools.vectorize.alv import fit_layer
    from tools.vectorize.options import VectorizeOptions

    torch.set_num_threads(threads)
    if device == "cpu":
        tune_cpu_allocator()
    target = rgba_tensor(load_photo("cat", size))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    # every path placed at the start and no adaptation: the steady cost of a step at this budget
    opts = VectorizeOptions(paths=paths, iters=steps, device=device, init_fraction=1.0, add=False, prune=False,
                            exact_from=0.0)
    stamps: list[float] = []  # after each step; the set-up before the first is not counted
    res = fit_layer(target, None, opts, on_progress=lambda _p: stamps.append(time.perf_counter()), progress_every=1)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    return {"sec_per_step": (stamps[-1] - stamps[0]) / (len(stamps) - 1), "peak_mb": peak, "paths": res.num_paths,
            "height": int(target.shape[0]), "width": int(target.shape[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--paths", default="1024,4096")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps, args.device, args.threads)))
        return
    import torch

    from tools.vectorize.options import VectorizeOptions

    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{args.threads} CPU threads"
    print(f"torch {torch.__version__}, {where}; photo: cat, {args.steps} steps per setting")
    print(f"{'size':>11} {'paths':>6} {'s/step':>8} {'peak MB':>8} {'fit estimate':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        for paths in (int(p) for p in args.paths.split(",")):
            cmd = [sys.executable, __file__, "--worker", str(size), str(paths), "--steps", str(args.steps),
                   "--device", args.device, "--threads", str(args.threads)]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{size:>11} {paths:>6}  failed: {(run.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            fit = r["sec_per_step"] * VectorizeOptions(paths=paths).steps
            print(f"{r['width']:>5}x{r['height']:<5} {paths:>6} {r['sec_per_step']:>8.3f} {r['peak_mb']:>8.0f} "
                  f"{fit:>11.0f} s", flush=True)
    print("fit estimate: s/step x the default step count (VectorizeOptions.steps), adaptation rounds not counted")


if __name__ == "__main__":
    main()
