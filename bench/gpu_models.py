"""The model backends at their real sizes on a GPU: per-call seconds and peak GPU memory of
GroundingDINO-base + SAM-H, SAM 3, LaMa (big-lama's architecture) and FLUX.1 Fill, and one whole
scripted run with all of them, through the tools' own code.

No weights can be downloaded where this runs, so every model has random weights built from its real
configuration: speed and memory do not depend on the weights, masks and fills are meaningless. The
models are built in memory and handed to the backends in place of their loaders (``load`` seconds
are therefore not measured here); LaMa is traced and saved as the TorchScript file users have and
loaded from it. ``--tiny`` runs the same code on tiny configurations (a plumbing check on the CPU).

    python bench/gpu_models.py --device cuda --out bench/out/gpu
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# --------------------------------------------------------------------------------- real configs
SAM_H = dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, global_attn_indexes=[7, 15, 23, 31])
SWIN_B = dict(image_size=384, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12,
              out_indices=[2, 3, 4], out_features=["stage2", "stage3", "stage4"])
FLUX_DEV = {  # FLUX.1-Fill-dev's sizes (tests/tiny_models.FLUX_FIXED has what every FLUX pipeline shares)
    "transformer": dict(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                        joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=[16, 56, 56]),
    "vae": dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32),
    "clip": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu"),
    "t5": dict(vocab_size=32128, d_model=4096, d_ff=10240, num_layers=24, num_heads=64, d_kv=64),
}


# ---------------------------------------------------------------- big-lama's generator (FFC ResNet)
class FourierUnit(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin * 2, cout * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout * 2)

    def forward(self, x):
        h, w = x.shape[-2:]
        f = torch.fft.rfft2(x.float(), norm="ortho")
        f = torch.cat([f.real, f.imag], 1)
        f = torch.relu(self.bn(self.conv(f)))
        re, im = f.chunk(2, 1)
        return torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho")


class SpectralTransform(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False), nn.BatchNorm2d(cout // 2), nn.ReLU(True))
        self.fu = FourierUnit(cout // 2, cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """A fast Fourier convolution with BN and ReLU on its local and global parts (LaMa's FFC_BN_ACT)."""

    def __init__(self, cin: int, cout: int, k: int, gin: float, gout: float, stride: int = 1, pad: int = 0):
        super().__init__()
        self.cig, self.cog = int(cin * gin), int(cout * gout)
        cil, col = cin - self.cig, cout - self.cog
        conv = functools.partial(nn.Conv2d, kernel_size=k, stride=stride, padding=pad, bias=False,
                                 padding_mode="reflect")
        self.l2l = conv(cil, col) if cil and col else None
        self.l2g = conv(cil, self.cog) if cil and self.cog else None
        self.g2l = conv(self.cig, col) if self.cig and col else None
        self.g2g = SpectralTransform(self.cig, self.cog) if self.cig and self.cog else None
        self.bn_l = nn.BatchNorm2d(col) if col else None
        self.bn_g = nn.BatchNorm2d(self.cog) if self.cog else None

    def forward(self, x):
        xl, xg = x[:, :x.shape[1] - self.cig], x[:, x.shape[1] - self.cig:]
        parts = []
        if self.bn_l is not None:
            yl = self.l2l(xl) if self.l2l is not None else 0
            yl = yl + self.g2l(xg) if self.g2l is not None else yl
            parts.append(torch.relu(self.bn_l(yl)))
        if self.bn_g is not None:
            yg = self.l2g(xl) if self.l2g is not None else 0
            yg = yg + self.g2g(xg) if self.g2g is not None else yg
            parts.append(torch.relu(self.bn_g(yg)))
        return torch.cat(parts, 1)


class BigLama(nn.Module):
    """big-lama's generator at its published size (ngf 64, 3 downsamplings, 18 FFC ResNet blocks with
    75% global channels), wrapped in the TorchScript file's ``forward(image, mask)``."""

    def __init__(self, ngf: int = 64, blocks: int = 18):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFC(4, ngf, 7, 0, 0)]
        for i in range(3):
            layers.append(FFC(ngf * 2 ** i, ngf * 2 ** (i + 1), 3, 0, 0.75 if i == 2 else 0, stride=2, pad=1))
        width = ngf * 8
        self.down = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(nn.Sequential(FFC(width, width, 3, 0.75, 0.75, pad=1),
                                                  FFC(width, width, 3, 0.75, 0.75, pad=1)) for _ in range(blocks))
        up: list[nn.Module] = []
        for i in range(3):
            c = ngf * 2 ** (3 - i)
            up += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(c // 2),
                   nn.ReLU(True)]
        self.up = nn.Sequential(*up, nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid())

    def forward(self, image, mask):
        x = self.down(torch.cat([image * (1 - mask), mask], 1))
        for block in self.blocks:
            x = x + block(x)
        return mask * self.up(x) + (1 - mask) * image


# ------------------------------------------------------------------------------------ the models
def lama_file(folder: Path, device: str, tiny: bool) -> Path:
    model = (BigLama(ngf=8, blocks=2) if tiny else BigLama()).eval().to(device)
    x, m = torch.rand(1, 3, 512, 512, device=device), torch.zeros(1, 1, 512, 512, device=device)
    with torch.no_grad():
        traced = torch.jit.trace(model, (x, m), check_trace=False)
    path = folder / "big-lama.pt"
    traced.save(str(path))
    return path


def words_vocab(folder: Path, size: int) -> Path:
    from tiny_models import GDINO_WORDS

    path = folder / "vocab.txt"
    path.write_text("\n".join(GDINO_WORDS + [f"w{i}" for i in range(size - len(GDINO_WORDS))]) + "\n")
    return path


def grounding_dino(folder: Path, device: str, tiny: bool):
    from tiny_models import build_tiny_grounding_dino
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    if tiny:
        path = build_tiny_grounding_dino(folder / "gdino" / "model")
        return (GroundingDinoForObjectDetection.from_pretrained(path).to(device).eval(),
                GroundingDinoProcessor.from_pretrained(path))
    config = GroundingDinoConfig(backbone_config=SwinConfig(**SWIN_B).to_dict(), text_config=BertConfig().to_dict())
    # built on the CPU and moved: some of its parameters are made with no regard for a default device
    model = GroundingDinoForObjectDetection(config).to(device).eval()
    processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(),
                                       tokenizer=BertTokenizer(str(words_vocab(folder, 30522))))
    return model, processor


def sam(folder: Path, device: str, tiny: bool):
    from tiny_models import build_tiny_sam
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor
    from transformers.models.sam.configuration_sam import SamVisionConfig

    if tiny:
        path = build_tiny_sam(folder / "sam")
        return SamModel.from_pretrained(path).to(device).eval(), SamProcessor.from_pretrained(path)
    model = SamModel(SamConfig(vision_config=SamVisionConfig(**SAM_H).to_dict())).to(device).eval()
    return model, SamProcessor(image_processor=SamImageProcessor())


def sam3(folder: Path, device: str, tiny: bool):
    from tiny_models import build_tiny_sam3
    from transformers import Sam3Config, Sam3Model, Sam3Processor

    if tiny:
        path = build_tiny_sam3(folder / "sam3")
        return Sam3Model.from_pretrained(path).to(device).eval(), Sam3Processor.from_pretrained(path)
    from tiny_models import sam3_processor

    with torch.device(device):
        model = Sam3Model(Sam3Config()).eval()
    return model, sam3_processor(1008)


def flux(device: str, tiny: bool):
    from tiny_models import FLUX_TINY, flux_pipeline

    from tools.flux import dtype_for

    pipe = flux_pipeline(FLUX_TINY if tiny else FLUX_DEV, device, dtype_for(device))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def hand_over(module, parts: tuple, folder: Path, probe: str) -> None:
    """Make ``module``'s backend find a model folder and load ``parts`` (built here) from it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / probe).write_text("{}")
    os.environ[module.ENV] = str(folder)
    module.load = functools.cache(lambda path, device: (*parts, 0.0))


# ------------------------------------------------------------------------------------ measuring
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(name: str, call, device: str, repeat: int) -> dict:
    """Seconds per call (after one warm-up call) and the peak GPU memory while calling."""
    call()
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        sync(device)
        seconds.append(time.perf_counter() - start)
    row = {"what": name, "calls": repeat, "s_per_call": round(float(np.median(seconds)), 4),
           "s_min": round(min(seconds), 4)}
    if device.startswith("cuda"):
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        row["resident_gib"] = round(torch.cuda.memory_allocated() / 2 ** 30, 2)
    print(json.dumps(row), flush=True)
    return row


def params(*modules) -> float:
    return round(sum(p.numel() for m in modules for p in m.parameters()) / 1e6, 1)


def photo(side: int = 512) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    import skimage.data
    from PIL import Image

    im = Image.fromarray(skimage.data.coffee())
    im = np.asarray(im.resize((side, round(side * im.height / im.width)), Image.LANCZOS))
    h, w = im.shape[:2]
    hole = np.zeros((h, w), bool)
    box = (round(0.27 * w), round(0.03 * h), round(0.70 * w), round(0.64 * h))  # the cup
    yy, xx = np.mgrid[:h, :w]
    cx, cy, rx, ry = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    hole[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = True
    return im, hole, box


# ------------------------------------------------------------------------------- the whole run
def whole_run(out: Path, device: str, segmenter: str, side: int, paths: int) -> dict:
    """The coffee script on a ``side`` px photo, then a redo of the saucer's fill with FLUX."""
    from agent_script import coffee_photo, coffee_script, with_flux_redo
    from scripted_server import ScriptedServer

    from agent.context import RunOptions
    from agent.run import run_peel
    from tools.vectorize.options import VectorizeOptions

    script = with_flux_redo(coffee_script())
    image = coffee_photo(out / "coffee.png", longest=side)
    start = time.perf_counter()
    with ScriptedServer(script) as srv:
        report = run_peel(RunOptions(image=image, out=out / f"run-{segmenter}", planner="vlm", vlm_url=srv.url,
                                     quiet=True, segmenter=segmenter,
                                     vectorize=VectorizeOptions(paths=paths, device=device)))
    seconds = time.perf_counter() - start
    m = json.loads((report.run_dir / "manifest.json").read_text())
    row = {"what": f"whole scripted run ({segmenter})", "status": report.status, "reason": report.reason,
           "seconds": round(seconds, 1), "backends": m["backends"],
           "timings_s": {k: round(v, 3) for k, v in m["timings_s"].items()},
           "layers": len(list((report.run_dir / "layers").iterdir())),
           "notes": m["notes"]}
    if device.startswith("cuda"):
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny configurations: a plumbing check")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "gpu"))
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per model (FLUX: 2)")
    ap.add_argument("--side", type=int, default=512, help="photo width for the calls and the run")
    ap.add_argument("--paths", type=int, default=512, help="the whole run's path budget")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: lama,gdino_sam,sam3,flux,run")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    device = args.device
    torch.manual_seed(0)
    import transformers

    from tools import flux as flux_mod
    from tools import grounding_dino as gdino_mod
    from tools import lama as lama_mod
    from tools import sam as sam_mod
    from tools import sam3 as sam3_mod
    from tools.detect import GroundingDinoDetector
    from tools.inpaint import FluxInpainter, LamaInpainter
    from tools.segment import Sam3Segmenter, SamSegmenter

    info = {"torch": torch.__version__, "transformers": transformers.__version__, "device": device,
            "tiny": args.tiny, "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None}
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        info["diffusers"] = None
    info["sam3_problem"] = sam3_mod.torchvision_problem()
    print(json.dumps(info), flush=True)
    rows: list[dict] = [info]
    image, hole, box = photo(args.side)
    models = out / "models"
    models.mkdir(exist_ok=True)

    def part(name: str, fn) -> None:
        if name in skip:
            return
        try:
            fn()
        except Exception as exc:  # one model's failure must not lose the others' figures
            traceback.print_exc()
            rows.append({"what": name, "error": f"{type(exc).__name__}: {exc}"[:400]})
        finally:
            with open(out / "gpu_models.json", "w") as f:
                json.dump(rows, f, indent=1)

    def run_lama():
        os.environ[lama_mod.ENV] = str(lama_file(models, device, args.tiny))
        backend = LamaInpainter(device=device)
        row = timed(f"LaMa (big-lama architecture) {image.shape[1]}x{image.shape[0]}",
                    lambda: backend.inpaint(image, hole), device, args.repeat)
        row["load_s"] = round(backend.load_seconds, 2)
        row["params_m"] = params(backend.loaded()[0])
        rows.append(row)

    def run_gdino_sam():
        g = grounding_dino(models, device, args.tiny)
        s = sam(models, device, args.tiny)
        hand_over(gdino_mod, g, models / "gdino-in-memory", "config.json")
        hand_over(sam_mod, s, models / "sam-in-memory", "config.json")
        detector, segmenter = GroundingDinoDetector(device=device), SamSegmenter(device=device)
        keywords = ["cup", "espresso"]
        rows.append(timed("GroundingDINO-base detect", lambda: detector.detect(image, keywords, box), device,
                          args.repeat) | {"params_m": params(g[0])})
        rows.append(timed("SAM-H segment (box)", lambda: segmenter.segment(image, box), device, args.repeat)
                    | {"params_m": params(s[0])})
        rows.append(timed("GroundingDINO-base + SAM-H", lambda: segmenter.segment(
            image, detector.detect(image, keywords, box)[0] or box), device, args.repeat))

    def run_sam3():
        if sam3_mod.torchvision_problem():
            rows.append({"what": "SAM 3", "skipped": sam3_mod.torchvision_problem()})
            return
        m = sam3(models, device, args.tiny)
        hand_over(sam3_mod, m, models / "sam3-in-memory", "config.json")
        segmenter = Sam3Segmenter(device=device)
        rows.append(timed("SAM 3 segment (text + box)", lambda: segmenter.segment(image, box, keywords=["cup"]),
                          device, args.repeat) | {"params_m": params(m[0])})

    def run_flux():
        start = time.perf_counter()
        pipe = flux(device, args.tiny)
        built = time.perf_counter() - start
        offloaded = flux_mod.place(pipe, device)
        hand_over(flux_mod, (pipe, offloaded), models / "flux-in-memory", flux_mod.PROBE)
        backend = FluxInpainter(device=device)
        row = timed(f"FLUX.1 Fill {image.shape[1]}x{image.shape[0]}, {flux_mod.STEPS} steps, from LaMa",
                    lambda: backend.inpaint(image, hole, seed=0, prompt="wooden table top with fine grain"),
                    device, max(1, min(args.repeat, 2)))
        row |= {"built_s": round(built, 1), "offloaded": offloaded, "started_from": backend.started_from,
                "params_m": params(pipe.transformer, pipe.vae, pipe.text_encoder, pipe.text_encoder_2)}
        rows.append(row)

    def run_whole():
        for segmenter in ("sam", "auto"):
            if segmenter == "auto" and sam3_mod.torchvision_problem():
                continue
            rows.append(whole_run(out, device, segmenter, args.side, args.paths))

    part("lama", run_lama)
    part("gdino_sam", run_gdino_sam)
    part("sam3", run_sam3)
    part("flux", run_flux)
    part("run", run_whole)
    print(f"wrote {out / 'gpu_models.json'}")


if __name__ == "__main__":
    main()
