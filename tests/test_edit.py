"""`amodal-agent edit`: object-level edits of a layered SVG, and `amodal-agent doctor`."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.cli import main
from tools.edit import Edit, apply_edit
from tools.metrics import resvg_render
from tools.svg import SvgDocument, SvgLayer, layer_id, read_svg, to_svg_string, write_svg
from tools.vectorize.pathset import PathSet
from tools.vectorize.scenes import random_blobs

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "coffee-scripted" / "result.svg"


def _layer(index: int, label: str, seed: int, count: int, radius=(3, 10)) -> SvgLayer:
    pts, cols = random_blobs(count, 48, 64, radius=radius, seed=seed)
    cols[:, 3] = 1.0
    return SvgLayer(layer_id(index, label), label, PathSet.from_uniform(pts, cols))


@pytest.fixture
def layered(tmp_path) -> Path:
    doc = SvgDocument(64, 48, [_layer(0, "background", 1, 20, (10, 30)), _layer(1, "saucer", 2, 6),
                               _layer(2, "cup", 3, 8)])
    path = tmp_path / "in.svg"
    write_svg(doc, path)
    return path


def _groups(svg_text: str) -> dict[str, str]:
    """label -> the group's text without its id (ids encode the position)."""
    out = {}
    for m in re.finditer(r'<g id="[^"]*"( inkscape:groupmode="layer" inkscape:label="([^"]*)">.*?</g>)', svg_text,
                         re.S):
        out[m.group(2)] = m.group(1)
    return out


def _edit(*args: str) -> int:
    return main(["edit", *map(str, args)])


def test_move_shifts_only_that_layer_and_leaves_the_others_byte_for_byte(layered, tmp_path, capsys):
    out = tmp_path / "out.svg"
    assert _edit(layered, "-o", out, "--layer", "cup", "--move", "5", "-3") == 0
    assert "moved layer-02-cup" in capsys.readouterr().out
    before, after = read_svg(layered), read_svg(out)
    assert torch.allclose(after.layers[2].paths.points, before.layers[2].paths.points + torch.tensor([5.0, -3.0]),
                          atol=1e-6)
    g_before, g_after = _groups(layered.read_text()), _groups(out.read_text())
    assert g_before["background"] == g_after["background"] and g_before["saucer"] == g_after["saucer"]
    assert g_before["cup"] != g_after["cup"]


def test_scale_keeps_the_layer_centred(layered, tmp_path):
    out = tmp_path / "out.svg"
    assert _edit(layered, "-o", out, "--layer", "saucer", "--scale", "2") == 0
    p0, p1 = read_svg(layered).layers[1].paths.points, read_svg(out).layers[1].paths.points
    size0, size1 = p0.amax(0) - p0.amin(0), p1.amax(0) - p1.amin(0)
    assert torch.allclose(size1, 2 * size0, atol=0.02)
    assert torch.allclose((p1.amax(0) + p1.amin(0)) / 2, (p0.amax(0) + p0.amin(0)) / 2, atol=0.02)


def test_recolor_moves_the_visible_mean_to_the_colour_and_keeps_the_shading():
    pts, _ = random_blobs(2, 40, 40, radius=(8, 12), seed=4)
    cols = torch.tensor([[0.45, 0.40, 0.35, 1.0], [0.65, 0.60, 0.55, 1.0]])  # a shaded object: dark and light
    doc = SvgDocument(40, 40, [SvgLayer(layer_id(0, "cup"), "cup", PathSet.from_uniform(pts, cols))])
    edited, _ = apply_edit(doc, "cup", Edit("recolor", "#3366cc"))
    new = edited.layers[0].paths.colors
    vis = edited.layers[0].paths.render(40, 40).visible_alpha
    mean = (new[:, :3] * vis[:, None]).sum(0) / vis.sum()
    assert torch.allclose(mean, torch.tensor([0x33, 0x66, 0xCC]) / 255, atol=1e-4)
    assert torch.allclose(new[1, :3] - new[0, :3], cols[1, :3] - cols[0, :3], atol=1e-5)  # shading kept
    assert torch.equal(new[:, 3], cols[:, 3])


def test_edits_of_a_gradient_layer_carry_its_gradients(tmp_path):
    """Move and scale carry the axes with the paths; recolour shifts both ends, so the shading stays."""
    from tools.vectorize.gradient import extend

    pts, cols = random_blobs(3, 40, 40, radius=(8, 12), seed=6)
    rows = extend(cols)
    rows[:, :4] = torch.tensor([[0.4, 0.45, 0.5, 1.0], [0.5, 0.5, 0.45, 1.0], [0.45, 0.4, 0.5, 1.0]])
    rows[:, 4:7] = torch.tensor([[0.3, 0.4, 0.4], [0.6, 0.55, 0.5], [0.5, 0.5, 0.3]])  # mid-tones: no clamping
    rows[:, 7:] = torch.tensor([0.1, 0.2, 0.9, 0.8])
    doc = SvgDocument(80, 80, [SvgLayer(layer_id(0, "cup"), "cup", PathSet.from_uniform(pts + 20, rows))])
    src = tmp_path / "in.svg"
    write_svg(doc, src)
    before = read_svg(src)
    image = before.render().image
    out = tmp_path / "moved.svg"
    assert _edit(src, "-o", out, "--layer", "cup", "--move", "7", "5") == 0
    moved = read_svg(out)
    assert torch.allclose(moved.render().image[5:, 7:], image[:-5, :-7], atol=2e-3)  # colours moved with the shapes
    assert _edit(src, "-o", out, "--layer", "cup", "--scale", "1.5") == 0
    ps0, ps1 = before.layers[0].paths, read_svg(out).layers[0].paths
    assert torch.allclose((ps1.gradients[:, 2:4] - ps1.gradients[:, :2]),
                          1.5 * (ps0.gradients[:, 2:4] - ps0.gradients[:, :2]), atol=0.02)
    edited, _ = apply_edit(before, "cup", Edit("recolor", "#5a6a7a"))
    new = edited.layers[0].paths
    assert torch.allclose(new.gradients[:, 4:7] - new.colors[:, :3], ps0.gradients[:, 4:7] - ps0.colors[:, :3],
                          atol=1e-6)  # each path's gradient kept
    vis = new.render(80, 80).visible_alpha
    mean = (((new.colors[:, :3] + new.gradients[:, 4:7]) / 2) * vis[:, None]).sum(0) / vis.sum()
    assert torch.allclose(mean, torch.tensor([0x5A, 0x6A, 0x7A], dtype=mean.dtype) / 255, atol=1e-4)
    assert "linearGradient" in to_svg_string(edited)


@pytest.mark.parametrize(("flag", "order"), [
    ("--raise", ["background", "cup", "saucer"]),
    ("--lower", ["saucer", "background", "cup"]),
    ("--to-front", ["background", "cup", "saucer"]),
    ("--to-back", ["saucer", "background", "cup"]),
    ("--remove", ["background", "cup"]),
])
def test_restacking_and_removal_renumber_the_ids(layered, tmp_path, flag, order):
    out = tmp_path / "out.svg"
    assert _edit(layered, "-o", out, "--layer", "saucer", flag) == 0
    doc = read_svg(out)
    assert [layer.label for layer in doc.layers] == order
    assert [layer.id for layer in doc.layers] == [layer_id(i, label) for i, label in enumerate(order)]
    assert _groups(out.read_text())["cup"] == _groups(layered.read_text())["cup"]  # paths untouched


def test_raise_on_the_front_layer_says_so_and_changes_nothing(layered, tmp_path, capsys):
    out = tmp_path / "out.svg"
    assert _edit(layered, "-o", out, "--layer", "2", "--raise") == 0
    assert "already at the front" in capsys.readouterr().out
    assert out.read_text() == layered.read_text()


def test_replace_puts_another_svg_in_the_layer(layered, tmp_path):
    other = tmp_path / "mug.svg"
    write_svg(SvgDocument(64, 48, [_layer(0, "mug", 9, 3)]), other)
    out = tmp_path / "out.svg"
    assert _edit(layered, "-o", out, "--layer", "layer-02-cup", "--replace", other) == 0
    doc = read_svg(out)
    assert doc.layers[2].label == "cup"
    assert torch.equal(doc.layers[2].paths.points, read_svg(other).layers[0].paths.points)


def test_replace_with_a_drawing_saved_by_inkscape(layered, tmp_path, capsys):
    """A drawing made elsewhere (mm page, CSS, arcs, <use>) arrives as the layer's paths, in pixels."""
    drawing = Path(__file__).parent / "data" / "inkscape-drawing.svg"
    out = tmp_path / "out.svg"
    assert _edit(layered, "-o", out, "--layer", "cup", "--replace", drawing) == 0
    err = capsys.readouterr().err
    assert "path2" in err and "text1" in err  # the stroke and the text it cannot carry are named
    doc = read_svg(out)
    assert [layer.label for layer in doc.layers] == ["background", "saucer", "cup"]
    cup = doc.layers[2].paths
    assert cup.num_paths == 5
    # the drawing spans (10, 4) .. (57, 37) mm on its page: the half disc's left end, the square's top and right
    # side, the circle's bottom; at 96 dpi that is these pixels (written at 2 decimals)
    mm = 96 / 25.4
    assert torch.allclose(cup.points.amin(0), torch.tensor([10 * mm, 4 * mm], dtype=torch.float64), atol=0.006)
    assert torch.allclose(cup.points.amax(0), torch.tensor([57 * mm, 37 * mm], dtype=torch.float64), atol=0.006)
    assert _groups(out.read_text())["saucer"] == _groups(layered.read_text())["saucer"]


def test_moving_an_object_of_a_real_run_leaves_no_hole(tmp_path):
    """The point of amodal layers: what the cup hid is complete, so moving the cup reveals no gap."""
    out = tmp_path / "moved.svg"
    assert _edit(EXAMPLE, "-o", out, "--layer", "cup", "--move", "30", "0", "--quiet") == 0
    before = resvg_render(EXAMPLE.read_text())
    after = resvg_render(out.read_text())
    assert np.abs(after - before).mean() > 0.01  # the picture did change
    assert after[..., 3].min() > 0.99  # and nothing became transparent: no hole where the cup was


@pytest.mark.parametrize(("args", "message"), [
    (["--layer", "teapot", "--remove"], "no layer 'teapot'"),
    (["--layer", "cup"], "exactly one of"),
    (["--layer", "cup", "--remove", "--raise"], "exactly one of"),
    (["--layer", "cup", "--scale", "0"], "--scale must be a positive number"),
    (["--layer", "cup", "--recolor", "hotpink2"], "unsupported colour"),
    (["--layer", "cup", "--replace", "missing.svg"], "no such file"),
])
def test_bad_edits_are_one_line_and_exit_2(layered, tmp_path, capsys, args, message):
    assert _edit(layered, "-o", tmp_path / "out.svg", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out.svg").exists()


def test_edit_of_a_missing_or_corrupt_svg_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg")
    for src in (tmp_path / "none.svg", bad):
        assert _edit(src, "-o", tmp_path / "out.svg", "--layer", "0", "--remove") == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_an_ambiguous_label_asks_for_an_id(tmp_path, capsys):
    doc = SvgDocument(64, 48, [_layer(0, "cup", 1, 2), _layer(1, "cup", 2, 2)])
    src = tmp_path / "two.svg"
    src.write_text(to_svg_string(doc))
    assert _edit(src, "-o", tmp_path / "out.svg", "--layer", "cup", "--remove") == 2
    assert "matches 2 layers; use an id" in capsys.readouterr().err


def test_doctor_lists_every_role_and_says_what_a_run_would_use(capsys):
    assert main(["doctor", "--vlm-url", "http://127.0.0.1:9/v1", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert {c["role"] for c in checks} == {"planner", "detect", "mask", "inpaint", "render", "metrics"}
    by_name = {c["backend"]: c for c in checks}
    vlm = next(c for c in checks if c["backend"].startswith("VLM"))
    assert not vlm["found"] and "127.0.0.1:9" in vlm["where"] and "vllm serve" in vlm["fix"]
    assert by_name["grabcut"]["found"] and by_name["patchmatch"]["found"]
    assert all(c["fix"] for c in checks if not c["found"])  # every missing backend says how to get it


def test_doctor_fails_when_no_inpainter_works(monkeypatch, capsys):
    from tools import inpaint

    for backend in inpaint.INPAINTERS.values():
        monkeypatch.setattr(backend, "available", classmethod(lambda cls: (False, "pip install something")))
    assert main(["doctor", "--vlm-url", "http://127.0.0.1:9/v1"]) == 1
    err = capsys.readouterr().err
    assert "inpaint backend patchmatch is required and missing" in err
