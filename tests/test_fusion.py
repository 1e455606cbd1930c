"""The fused (compiled) stages render and differentiate as the eager ones do.

Compiling takes about a minute on two cores, so this is a slow test; ``bench/gpu_fit.py`` makes
the same comparison on CUDA before it times fused fits.
"""

import pytest
import torch

from tools.vectorize import render
from tools.vectorize.fusion import fusion_enabled, set_fusion
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
    set_fusion(True)
    try:
        fused = _image_and_grads(points, colors, **kw)
    finally:
        set_fusion(False)
    for a, b, what in zip(eager, fused, ("image", "point gradients", "colour gradients"), strict=True):
        err = float((a - b).abs().max() / a.abs().max())
        assert err < 2e-2 if what == "colour gradients" else err < 1e-4, (what, err)
    assert float((eager[0] - fused[0]).abs().max()) < 1e-5
