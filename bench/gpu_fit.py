"""Fit seconds on a GPU, and how far a fitting step is from the GPU's own work (issue 14).

For each setting (photo size, path ceiling) it runs one whole default fit (``fit_layer``, as the CLI
does) and prints its seconds, steps and PSNR; then, on the fitted paths, it profiles a few fitting
steps (render with exact crossings as in a fit's last part, loss, backward) and prints per step:
wall milliseconds, milliseconds the GPU spent in kernels, kernels launched and host syncs. When the
kernel time is a small share of the wall time, the step is bound by launching work, not by doing
it, and the kernel time is the floor a fused or graph-captured step could approach.

Each setting runs in each of ``--modes``: ``eager`` (the default renderer) and ``fused`` (its
elementwise stages compiled into fused kernels, ``tools/vectorize/fusion.py``). Before the first
fused fit, one step compiles the stages; its seconds are printed, and a fused step's image and
gradients are compared with the eager step's.

    python bench/gpu_fit.py                      # CUDA: 1024 paths at 256 px, 4096 paths at 1024 px
    python bench/gpu_fit.py --device cpu --settings 256:256   # the same figures' wall part on the CPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import load_photo, rgba_tensor

from tools.vectorize import tune_cpu_allocator
from tools.vectorize.alv import FIT_EXACT_LINES, fit_layer
from tools.vectorize.fusion import prepare, set_fusion
from tools.vectorize.gradient import render_rows
from tools.vectorize.options import VectorizeOptions

SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def fitting_step(points: torch.Tensor, colors: torch.Tensor, target: torch.Tensor):
    """One step as the fit's last part takes it (exact crossings on), without the optimizer's update;
    returns the image and the gradients."""
    p = points.detach().clone().requires_grad_(True)
    c = colors.detach().clone().requires_grad_(True)
    img = render_rows(p, c, target.shape[0], target.shape[1], exact=True, exact_lines=FIT_EXACT_LINES).image
    loss = ((img - target) ** 2).sum()
    loss.backward()
    float(loss.detach())  # the fit reads its loss every step
    return img.detach(), p.grad, c.grad


def compare_fused(points, colors, target, device: str) -> str:
    """Compile the fused stages, then compare a fused step with the eager step."""
    seconds = prepare(device)
    set_fusion(False)
    ref = fitting_step(points, colors, target)
    set_fusion(True)
    got = fitting_step(points, colors, target)
    set_fusion(False)
    diffs = [float((a - b).abs().max() / b.abs().max().clamp(min=1e-12)) for a, b in zip(got, ref, strict=True)]
    return (f"fused stages compiled in {seconds:.1f} s; fused vs eager step, max difference relative to the "
            f"largest value: image {diffs[0]:.1e}, point gradients {diffs[1]:.1e}, colour gradients {diffs[2]:.1e}")


def profile_steps(points, colors, target, device: str, steps: int) -> dict:
    """Wall ms per step (median), and on CUDA kernel ms, kernels and syncs per step (means)."""
    for _ in range(3):  # warm-up: allocator, kernels' first launches
        fitting_step(points, colors, target)
    walls = []
    for _ in range(steps):
        _sync(device)
        t = time.perf_counter()
        fitting_step(points, colors, target)
        _sync(device)
        walls.append((time.perf_counter() - t) * 1000)
    out = {"wall_ms": statistics.median(walls), "kernel_ms": float("nan"), "kernels": float("nan"),
           "syncs": float("nan")}
    if device != "cuda":
        return out
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fitting_step(points, colors, target)
        torch.cuda.synchronize()
    kernel_us, kernels, syncs = 0.0, 0, 0
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            kernels += 1
            kernel_us += e.time_range.elapsed_us()
        elif any(e.name.startswith(s) for s in SYNC_CALLS):
            syncs += 1
    out.update(kernel_ms=kernel_us / 1000 / steps, kernels=kernels / steps, syncs=syncs / steps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--settings", default="256:1024,1024:4096",
                    help="working size (longest side, px) : path ceiling, comma-separated")
    ap.add_argument("--photo", default="cat", help="scikit-image photo (cat is chelsea)")
    ap.add_argument("--profile-steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (the CPU device only)")
    ap.add_argument("--modes", default="eager,fused", help="renderer modes, comma-separated: eager, fused")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        tune_cpu_allocator()
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{args.threads} CPU threads"
    print(f"torch {torch.__version__}, {where}; photo: {args.photo}; one default fit per setting, then "
          f"{args.profile_steps} profiled steps on its paths")
    print(f"{'mode':>6} {'size':>11} {'paths':>6} {'steps':>6} {'fit s':>7} {'PSNR':>6} {'ms/step':>8} "
          f"{'kernel ms':>10} {'kernels':>8} {'syncs':>6} {'busy':>5}")
    compiled = False
    for mode in args.modes.split(","):
        if mode not in ("eager", "fused"):
            raise SystemExit(f"unknown mode {mode!r}: eager or fused")
        for setting in args.settings.split(","):
            size, paths = (int(v) for v in setting.split(":"))
            target = rgba_tensor(load_photo(args.photo, size))
            opts = VectorizeOptions(paths=paths, device=args.device, fused=mode == "fused")
            if mode == "fused" and not compiled:  # compile outside the timed fit
                seed = fit_layer(target, None, VectorizeOptions(paths=paths, iters=2, device=args.device))
                dev = target.to(args.device)
                print(compare_fused(seed.points.to(args.device), seed.colors.to(args.device), dev, args.device),
                      flush=True)
                compiled = True
            _sync(args.device)
            res = fit_layer(target, None, opts)
            _sync(args.device)
            set_fusion(mode == "fused")  # for the profiled steps, which call the renderer directly
            dev_target = target.to(args.device)
            prof = profile_steps(res.points.to(args.device), res.colors.to(args.device), dev_target, args.device,
                                 args.profile_steps)
            busy = prof["kernel_ms"] / prof["wall_ms"]
            print(f"{mode:>6} {target.shape[1]:>5}x{target.shape[0]:<5} {res.num_paths:>6} {opts.steps:>6} "
                  f"{res.seconds:>7.1f} {res.psnr:>6.2f} {prof['wall_ms']:>8.2f} {prof['kernel_ms']:>10.2f} "
                  f"{prof['kernels']:>8.0f} {prof['syncs']:>6.0f} {busy:>5.0%}", flush=True)
    set_fusion(False)
    print("fit s: one whole default fit (adaptation included); ms/step: render + loss + backward on the fitted "
          "paths, median; kernel ms: GPU time in kernels per step; busy: kernel ms / ms per step")


if __name__ == "__main__":
    main()
