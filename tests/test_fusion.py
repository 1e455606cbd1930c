"""The fused (compiled) stages render and differentiate as the eager ones do, and ``--fused``
reaches them or fails in one line.

Compiling takes about a minute on two cores, so the tests that compile are slow tests;
``bench/gpu_fit.py`` makes the same comparison on CUDA before it times fused fits.
"""


import pytest
import torch
from conftest import RUN_FLAGS
from PIL import Image

from agent.cli import main
from agent.flags import run_options
from tools.vectorize import fusion, render
from tools.vectorize.alv import fit_layer
from tools.vectorize.fusion import fusion_enabled, set_fusion
from tools.vectorize.options import VectorizeOptions
from tools.vectorize.scenes import random_blobs


def _image_and_grads(points, colors, **kw):
    p = points.detach().clone().requires_grad_(True)
    c = colors.detach().clone().requires_grad_(True)
    target = torch.rand(96, 128, 4, generator=torch.Generator().manual_seed(1))
    img = render(p, c, 96, 128, **kw)
    ((img - target) ** 2).sum().backward()
    return img.detach(), p.grad, c.grad


@pytest.mark.slow
@pytest.mark.parametrize("kw", [dict(), dict(fill_rule="evenodd"), dict(exact=False)], ids=["nonzero", "evenodd",
                                                                                               "area-sum"])
def test_fused_stages_match_eager(kw):
    points, colors = random_blobs(300, 96, 128, seed=5)
    points = points + torch.randn(points.shape, generator=torch.Generator().manual_seed(2)) * 6  # folds
    assert not fusion_enabled()
    eager = _image_and_grads(points, colors, **kw)
    set_fusion(True, all_stages=True)
    try:
        fused = _image_and_grads(points, colors, **kw)
    finally:
        set_fusion(False)
    for a, b, what in zip(eager, fused, ("image", "point gradients", "colour gradients"), strict=True):
        err = float((a - b).abs().max() / a.abs().max())
        assert err < 2e-2 if what == "colour gradients" else err < 1e-4, (what, err)
    assert float((eager[0] - fused[0]).abs().max()) < 1e-5


@pytest.fixture
def no_compiler(tmp_path, monkeypatch):
    """A machine where torch.compile cannot work; yields a small photo to run on."""
    def fail(device):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx\n...")

    monkeypatch.setattr(fusion, "_warm_up", fail)
    monkeypatch.setattr(fusion, "_ready", set())
    photo = tmp_path / "p.png"
    Image.new("RGB", (32, 24), (200, 40, 40)).save(photo)
    return photo


def test_a_machine_where_compiling_fails_gets_one_line_and_an_exit_2(no_compiler, tmp_path, capsys):
    """``--fused`` compiles up front; where torch.compile cannot work the user is told what to do,
    no traceback, no SVG, and fusion is off again afterwards."""
    out = tmp_path / "p.svg"
    assert main(["vectorize", str(no_compiler), "-o", str(out), "--paths", "4", "--iters", "5", "--fused",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "C++ compiler" in err and "without --fused" in err, err
    assert not out.exists() and not fusion_enabled()


def test_a_peel_with_fused_fails_before_any_work_where_compiling_cannot(no_compiler, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([str(no_compiler), "--planner", "heuristic", "--out", str(out), "--fused", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "without --fused" in err, err
    assert not out.exists()  # refused before the run folder: nothing to clean up


def test_fused_is_off_by_default_and_the_flags_reach_the_options():
    assert VectorizeOptions().fused is False
    assert run_options(*RUN_FLAGS).vectorize.fused is False
    assert run_options(*RUN_FLAGS, fused=True).vectorize.fused is True
    assert VectorizeOptions.from_dict(VectorizeOptions(fused=True).to_dict()).fused is True  # manifests keep it


@pytest.mark.slow
def test_a_fused_fit_matches_an_eager_fit():
    """The option end to end: fits fused and eager land at the same fidelity. Rounding sends the two
    on different paths, as another seed does, so the means over eight seeds are compared (the seeds
    alone spread these fits over 3 dB; over three seeds the means were 0.6 dB apart)."""
    points, colors = random_blobs(40, 48, 64, seed=3)
    target = render(points, colors, 48, 64, background=torch.ones(3))
    mean = {f: sum(fit_layer(target, None, VectorizeOptions(paths=32, iters=80, device="cpu", fused=f, seed=s)).psnr
                   for s in range(8)) / 8 for f in (False, True)}
    assert abs(mean[False] - mean[True]) < 0.5 and mean[True] > 30, mean
    assert not fusion_enabled()
