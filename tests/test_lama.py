"""The LaMa backend, through the path its users take (a TorchScript file in the env var, torch hub's
checkpoint folder or the Hugging Face cache), on a tiny scripted module with big-lama.pt's contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_models import NotLama, TinyLama, heuristic_run, script

from agent.cli import main
from tools import lama
from tools.inpaint import INPAINTERS, LamaInpainter, choose_inpainter


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    path = script(TinyLama(), tmp_path / "weights" / "big-lama.pt")
    monkeypatch.setenv(lama.ENV, str(path))
    return path


def two_tone(h: int = 45, w: int = 61) -> tuple[np.ndarray, np.ndarray]:
    """An odd-sized image (the padding to multiples of 8 is exercised) with a square hole."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 60, 40)
    img[:, w // 2 :] = (40, 90, 210)
    hole = np.zeros((h, w), bool)
    hole[10:30, 20:40] = True
    return img, hole


def test_lama_fills_only_the_hole_through_the_env_var(tiny):
    assert LamaInpainter.available() == (True, f"{lama.ENV}={tiny}")
    assert choose_inpainter("auto") == (LamaInpainter, None)  # the method's inpainter comes first
    img, hole = two_tone()
    out = LamaInpainter(device="cpu").inpaint(img, hole, seed=0)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[~hole] == img[~hole]).all()  # byte for byte outside the hole
    # TinyLama's fill: the mean of what it was given, the image padded to 48 x 64 by repeating its edges
    padded = np.pad(img, ((0, 3), (0, 3), (0, 0)), mode="edge").astype(float)
    known = ~np.pad(hole, ((0, 3), (0, 3)), mode="edge")
    assert np.abs(out[hole].astype(float) - padded[known].mean(0)).max() <= 0.5
    assert (LamaInpainter().inpaint(img, np.zeros_like(hole)) == img).all()


def test_lama_is_loaded_once_per_process(tiny):
    img, hole = two_tone()
    for _ in range(3):
        INPAINTERS["lama"](device="cpu").inpaint(img, hole)
    assert lama.load.cache_info().misses == 1 and lama.load.cache_info().hits == 2


@pytest.mark.parametrize("where", ["torch hub", "hugging face cache"])
def test_lama_is_found_where_other_tools_keep_it(tmp_path, monkeypatch, where):
    if where == "torch hub":
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        path = script(TinyLama(), tmp_path / "torch" / "hub" / "checkpoints" / "big-lama.pt")
    else:
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        snapshot = tmp_path / "hub" / "models--someone--big-lama" / "snapshots" / "0a1b2c"
        path = script(TinyLama(), snapshot / "big-lama.pt")
    assert lama.locate() == (path, str(path))
    img, hole = two_tone(32, 40)
    assert (LamaInpainter().inpaint(img, hole)[~hole] == img[~hole]).all()


def test_a_missing_or_wrong_file_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv(lama.ENV, str(tmp_path / "nowhere.pt"))
    ok, why = LamaInpainter.available()
    assert not ok and why == (f"no big-lama.pt: set {lama.ENV} to LaMa's TorchScript file "
                              f"({lama.ENV}={tmp_path}/nowhere.pt is not a file)")
    with pytest.raises(ValueError, match=r"^lama is not available: no big-lama\.pt"):
        choose_inpainter("lama")
    img, hole = two_tone()
    with pytest.raises(ValueError, match=r"^lama is not available"):
        LamaInpainter().inpaint(img, hole)
    monkeypatch.setenv(lama.ENV, str(script(NotLama(), tmp_path / "other.pt")))
    with pytest.raises(ValueError, match=r"^not a LaMa TorchScript model: forward\(image, mask\) returned "
                                         r"\(1, 1, 48, 64\)"):
        LamaInpainter().inpaint(img, hole)


def test_a_run_uses_lama_and_says_so(tiny, tmp_path):
    code, manifest, _ = heuristic_run(tmp_path)
    assert code == 0 and manifest["status"] == "finished"
    assert manifest["backends"]["inpaint"] == ["lama"]
    assert not any("lama" in note for note in manifest["notes"])  # nothing fell back
    assert manifest["timings_s"]["tool:inpaint"] > 0 and manifest["timings_s"]["load:lama"] > 0  # loaded once


def test_doctor_says_where_it_looked_and_what_to_set(tmp_path, monkeypatch, capsys):
    assert main(["doctor", "--vlm-url", "http://127.0.0.1:9/v1", "--json"]) == 0
    row = next(c for c in json.loads(capsys.readouterr().out) if c["backend"] == "lama")
    assert not row["found"] and row["fix"] == (f"no big-lama.pt: curl -L --create-dirs -o {lama.HUB_FILE} "
                                               f"{lama.URL}, or set {lama.ENV} to the file")
    assert row["where"].startswith(f"looked in {lama.ENV} (unset), ") and "checkpoints" in row["where"]
    path = script(TinyLama(), tmp_path / "big-lama.pt")
    monkeypatch.setenv(lama.ENV, str(path))
    assert main(["doctor", "--vlm-url", "http://127.0.0.1:9/v1", "--json"]) == 0
    row = next(c for c in json.loads(capsys.readouterr().out) if c["backend"] == "lama")
    assert row["found"] and row["where"] == f"{lama.ENV}={path}" and not row["fix"]
