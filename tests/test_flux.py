"""The FLUX.1 Fill backend through the path its users take (a diffusers pipeline folder in the env
var, or the Hugging Face cache read offline), on a tiny random-weight pipeline the test builds from
diffusers' and transformers' configs, with tokenizers it writes."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TinyLama, build_tiny_flux, disc_photo, script

from agent.cli import main
from tools import flux, lama
from tools.amodal import cut
from tools.inpaint import (
    OUTPAINT_ORDER,
    FluxInpainter,
    LamaInpainter,
    PatchMatchInpainter,
    choose_inpainter,
)

pytest.importorskip("diffusers", reason="the [models] extra is not installed")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_flux(tmp_path_factory.mktemp("flux") / "tiny-flux")


@pytest.fixture
def tiny(tiny_folder, monkeypatch) -> Path:
    monkeypatch.setenv(flux.ENV, str(tiny_folder))
    return tiny_folder


def hole_in(img: np.ndarray) -> np.ndarray:
    hole = np.zeros(img.shape[:2], bool)
    hole[10:30, 15:35] = True
    return hole


def test_flux_fills_only_the_hole_and_is_seeded(tiny):
    assert FluxInpainter.available() == (True, f"{flux.ENV}={tiny}")
    img = disc_photo()  # 45 x 61: padded to 48 x 64 for the VAE and the 2 x 2 patches, then cropped back
    hole = hole_in(img)
    backend = FluxInpainter(device="cpu")
    out = backend.inpaint(img, hole, seed=3, prompt="wooden table top")
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[~hole] == img[~hole]).all()  # outside the hole, byte for byte
    assert (out[hole] != img[hole]).any()
    assert backend.started_from is None and backend.offloaded is False  # no LaMa here: from noise
    assert (backend.inpaint(img, hole, seed=3, prompt="wooden table top") == out).all()
    assert not (backend.inpaint(img, hole, seed=4, prompt="wooden table top") == out).all()
    pipe, offloaded, _ = flux.load(str(tiny), "cpu")
    assert pipe.transformer.dtype == torch.float32 and not offloaded  # bf16 only on CUDA
    assert flux.load.cache_info().misses == 1


def test_flux_starts_from_lamas_fill(tiny, tmp_path, monkeypatch):
    """With LaMa present, FLUX repaints LaMa's fill (strength < 1) with the paper's steps and guidance."""
    monkeypatch.setenv(lama.ENV, str(script(TinyLama(), tmp_path / "big-lama.pt")))
    pipe, _, _ = flux.load(str(tiny), "cpu")
    seen = {}
    call = type(pipe).__call__

    @functools.wraps(call)  # keeps the pipeline's signature, which says it can start from a fill
    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", spy)
    img = disc_photo()
    hole = hole_in(img)
    backend = FluxInpainter(device="cpu")
    out = backend.inpaint(img, hole, seed=0, prompt="grey wall")
    assert backend.started_from == "lama" and (out[~hole] == img[~hole]).all()
    assert seen["strength"] == flux.STRENGTH < 1 and seen["num_inference_steps"] == 28
    assert seen["guidance_scale"] == 10 and seen["prompt"] == "grey wall"
    start = np.asarray(seen["image"])  # LaMa's fill (the tiny LaMa paints the mean colour), padded to 48 x 64
    assert start.shape == (48, 64, 3) and (start[:45, :61][~hole] == img[~hole]).all()
    lama_fill = LamaInpainter(device="cpu").inpaint(img, hole)
    assert (start[:45, :61][hole] == lama_fill[hole]).all()
    assert (np.asarray(seen["mask_image"])[:45, :61] > 127).tolist() == hole.tolist()


def test_flux_is_found_offline_in_the_hf_cache(tiny_folder, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--black-forest-labs--FLUX.1-Fill-dev"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "snapshots" / "abc123").symlink_to(tiny_folder, target_is_directory=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = repo / "snapshots" / "abc123"
    assert flux.locate() == (snapshot, "black-forest-labs/FLUX.1-Fill-dev in the Hugging Face cache")
    img = disc_photo()
    assert (FluxInpainter(device="cpu").inpaint(img, hole_in(img), prompt="table")[~hole_in(img)]
            == img[~hole_in(img)]).all()


def test_without_weights_flux_says_what_to_get_and_auto_never_picks_it(tmp_path, monkeypatch):
    ok, why = FluxInpainter.available()
    assert not ok and why == ("no FLUX.1 Fill weights: huggingface-cli download black-forest-labs/FLUX.1-Fill-dev, "
                              f"or set {flux.ENV} to a model folder")
    monkeypatch.setenv(flux.ENV, str(tmp_path))
    assert FluxInpainter.available() == (False, f"no FLUX.1 Fill weights: {flux.ENV}={tmp_path} is not a model "
                                                "folder (no model_index.json)")
    with pytest.raises(ValueError, match=r"^flux is not available: no FLUX.1 Fill weights: .*; call inpaint with"):
        choose_inpainter("flux")


def test_outpainting_prefers_flux_and_inpainting_asks_for_it(tiny):
    assert OUTPAINT_ORDER[0] == "flux" and choose_inpainter("auto", OUTPAINT_ORDER) == (FluxInpainter, None)
    backend, note = choose_inpainter("auto")  # inpaint: the model asks for FLUX after seeing the first fill
    assert backend is PatchMatchInpainter and "flux" not in (note or "")


def test_a_prompt_steers_the_fill_behind_not_the_objects_own_texture(tiny):
    """``cut`` paints behind the object with FLUX and the prompt, and continues the object's hidden
    part with a prompt-free inpainter."""
    img = disc_photo()
    visible = np.zeros(img.shape[:2], bool)
    visible[12:33, 14:38] = True
    occluded = np.zeros_like(visible)
    occluded[12:33, 30:45] = True
    visible &= ~occluded
    calls = []

    class Recorder(PatchMatchInpainter):
        def inpaint(self, image, hole, seed=0, prompt=""):
            calls.append(("texture", prompt))
            return super().inpaint(image, hole, seed, prompt)

    backend = FluxInpainter(device="cpu")
    piece = cut(img, visible, occluded, backend, prompt="wooden table", texture=Recorder())
    assert calls == [("texture", "")] and piece.layer.shape == (*img.shape[:2], 4)


def test_the_model_is_offered_flux_with_a_prompt(tiny):
    from agent.toolspec import ToolSet, machine_capabilities

    tools = ToolSet(machine_capabilities(1024, 812))
    props = next(t for t in tools.tools if t["function"]["name"] == "inpaint")["function"]["parameters"]["properties"]
    assert "flux" in props["method"]["enum"] and "FLUX.1 Fill" in props["method"]["description"]
    assert props["prompt"]["description"].startswith("Only with method flux: What is behind the object")


def test_doctor_names_the_flux_licence(capsys):
    assert main(["doctor", "--vlm-url", "http://127.0.0.1:9/v1", "--json"]) == 0
    row = next(c for c in json.loads(capsys.readouterr().out) if c["backend"] == "flux")
    assert not row["found"] and "FLUX.1 [dev] Non-Commercial License" in row["where"]
    assert row["fix"].startswith("no FLUX.1 Fill weights: huggingface-cli download black-forest-labs/FLUX.1-Fill-dev")


def test_flux_is_offloaded_only_when_the_gpu_is_short_of_memory(monkeypatch):
    """bf16 weights plus the activations' headroom must fit the GPU's free memory, else model CPU offload."""
    weights = torch.nn.Linear(1024, 1024)  # 4 MiB of float32

    class Pipe:
        def __init__(self):
            self.components = {"transformer": weights, "scheduler": object()}
            self.calls = []

        def to(self, device):
            self.calls.append(("to", device))

        def enable_model_cpu_offload(self, device):
            self.calls.append(("offload", device))

    size = 1024 * 1024 * 4 + 1024 * 4
    for free, expected in ((size + flux.HEADROOM, [("to", "cuda")]), (size + flux.HEADROOM - 1, [("offload", "cuda")])):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 2 * free))
        pipe = Pipe()
        assert flux.place(pipe, "cuda") == (expected[0][0] == "offload") and pipe.calls == expected
    pipe = Pipe()
    assert flux.place(pipe, "cpu") is False and pipe.calls == [("to", "cpu")]
    assert flux.dtype_for("cuda:0") == torch.bfloat16 and flux.dtype_for("cpu") == torch.float32
