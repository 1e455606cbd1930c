"""Bad input, every kind a user meets: one line on stderr naming the file and what to do, exit code 2,
no traceback and no run folder. Inputs that are unusual but fine load, and say what was done to them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.cli import main
from tools.image import MIN_SIDE, read_photo

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "coffee-scripted"


def _refused(capsys, args: list[str], message: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("amodal-agent: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in err


def _png(path: Path, size=(64, 48), mode="RGB") -> Path:
    Image.new(mode, size, 128 if mode in ("L", "1", "P", "I;16") else (200, 100, 50)).save(path)
    return path


@pytest.fixture
def make(tmp_path):
    """Writes the named bad input into tmp_path and returns its path."""
    def build(kind: str) -> Path:
        p = tmp_path / f"{kind}.png"
        if kind == "missing":
            return tmp_path / "nothing-here.png"
        if kind == "folder":
            (tmp_path / "folder").mkdir()
            return tmp_path / "folder"
        if kind == "empty":
            p.write_bytes(b"")
        elif kind == "truncated":
            full = _png(tmp_path / "full.png", (200, 150)).read_bytes()
            p.write_bytes(full[: len(full) // 2])
        elif kind == "truncated-jpeg":
            p = tmp_path / "cut.jpg"
            Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)).save(p, quality=90)
            p.write_bytes(p.read_bytes()[:2000])
        elif kind == "text":
            p.write_text("hello, I am not a photo\n")
        elif kind == "svg":
            p = tmp_path / "drawing.svg"
            shutil.copy(EXAMPLE / "result.svg", p)
        elif kind == "svg-named-png":
            shutil.copy(EXAMPLE / "result.svg", p)
        elif kind == "1x1":
            _png(p, (1, 1))
        elif kind == "8x8":
            _png(p, (8, 8))
        elif kind == "thin":
            _png(p, (1000, 40))
        elif kind == "large":
            Image.new("1", (9000, 9000)).save(p)  # 81 MP: above our limit, under Pillow's bomb warning
        elif kind == "bomb":
            Image.new("1", (14000, 14000)).save(p)  # 196 MP: Pillow's decompression-bomb error
        return p
    return build


@pytest.mark.parametrize(("kind", "message"), [
    ("missing", "no such file"),
    ("folder", "is a folder, not an image"),
    ("empty", "is empty (0 bytes)"),
    ("truncated", "corrupt or truncated image"),
    ("truncated-jpeg", "corrupt or truncated image"),
    ("text", "not an image format Pillow can read"),
    ("svg", "is an SVG; give a raster photo"),
    ("svg-named-png", "is an SVG; give a raster photo"),
    ("1x1", f"1x1 is too small; a photo needs at least {MIN_SIDE} px on each side"),
    ("8x8", f"8x8 is too small; a photo needs at least {MIN_SIDE} px on each side"),
    ("thin", "1000x40 is too thin (aspect ratio above 20:1)"),
    ("large", "9000x9000 is larger than the supported 8192x8192 pixels"),
    ("bomb", "refused as a decompression bomb"),
])
def test_bad_photo_is_refused_in_one_line(make, capsys, tmp_path, kind, message):
    path = make(kind)
    out = tmp_path / "run"
    _refused(capsys, [str(path), "--planner", "heuristic", "--out", str(out)], f"{path}: ")
    _refused(capsys, [str(path), "--planner", "heuristic", "--out", str(out)], message)
    assert not out.exists(), "a refused run makes no folder"


@pytest.mark.parametrize("mode", ["I;16", "P", "CMYK", "L", "1", "LA", "RGBA", "PA"])
def test_unusual_modes_load_and_transparency_is_said(tmp_path, mode):
    im = Image.new(mode if mode != "PA" else "P", (40, 30))
    if mode == "I;16":
        im = Image.fromarray(np.full((30, 40), 40000, np.uint16))
    if mode in ("LA", "RGBA"):
        im.putalpha(Image.linear_gradient("L").resize((40, 30)))
    path = tmp_path / f"{mode.replace(';', '')}.{'tif' if mode == 'CMYK' else 'png'}"
    if mode == "PA":
        im.save(path, transparency=0)  # palette index 0 transparent
    else:
        im.save(path)
    rgb, notes = read_photo(path)
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.float32 and rgb.min() >= 0 and rgb.max() <= 1
    transparent = mode in ("LA", "RGBA", "PA")
    assert bool(notes) == transparent
    if transparent:
        assert notes == [f"the photo has transparency ({im.mode}); it is worked on composited over white"]
    if mode == "I;16":
        assert abs(float(rgb.mean()) - 40000 / 65535) < 1e-3, "16-bit is scaled, not clipped"


@pytest.mark.parametrize(("flags", "message"), [
    (["--timeout", "0"], "--timeout must be in (0, 3600] seconds"),
    (["--timeout", "-5"], "--timeout must be in (0, 3600] seconds"),
    (["--export", "psd,tiff"], "choose from psd, png"),
    (["--max-layers", "11"], "--max-layers must be in 1..10"),
    (["--paths", "2"], "--paths must be at least"),
    (["--size", "8"], "--size must be 0 (full resolution) or at least 32"),
    (["--planner", "magic"], "--planner must be auto, vlm or heuristic"),
    (["--segmenter", "nope"], "--segmenter"),
    (["--seed", "x"], "Invalid value for '--seed'"),
])
def test_bad_flag_values(tmp_path, capsys, flags, message):
    photo = _png(tmp_path / "ok.png")
    _refused(capsys, [str(photo), "--out", str(tmp_path / "run"), *flags], message)
    assert not (tmp_path / "run").exists()


def test_edit_and_replay_inputs(tmp_path, capsys):
    svg = tmp_path / "cut.svg"
    svg.write_text((EXAMPLE / "result.svg").read_text()[:3000])
    _refused(capsys, ["edit", str(svg), "-o", str(tmp_path / "o.svg"), "--layer", "cup", "--remove"],
             "not a well-formed SVG")
    _refused(capsys, ["edit", str(tmp_path / "none.svg"), "-o", str(tmp_path / "o.svg"), "--layer", "1", "--remove"],
             "none.svg")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    _refused(capsys, ["replay", str(empty)], "trace.jsonl: no trace here")
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    lines = (run / "trace.jsonl").read_text().splitlines(keepends=True)
    lines[4] = "{oops\n"
    (run / "trace.jsonl").write_text("".join(lines))
    for args in (["replay", str(run)], ["replay", str(run), "--rerun"], ["view", str(run)]):
        _refused(capsys, args, "trace.jsonl:5: not JSON")
