"""Adaptive Layered Vectorization: fidelity on simple shapes, pruning, the mask term, determinism,
and the ``vectorize`` command's handling of good and bad input."""

import json

import numpy as np
import pytest
import torch
from conftest import RUN_FLAGS
from PIL import Image

from agent.cli import main
from agent.flags import run_options
from tools.image import psnr
from tools.metrics import premultiply, resvg_render
from tools.svg import read_svg, to_svg_string
from tools.vectorize.alv import fit_layer
from tools.vectorize.geometry import unit_circle
from tools.vectorize.options import VectorizeOptions
from tools.vectorize.prune import keep_mask, prune_scores
from tools.vectorize_file import result_document


def flat_shapes(size: int = 64) -> np.ndarray:
    """White canvas, a red disc and a blue square: flat colours with anti-aliased edges."""
    n = 8
    s = (np.arange(size * n) + 0.5) / n
    x, y = np.meshgrid(s, s)
    img = np.ones((size * n, size * n, 3))
    img[(x - 24) ** 2 + (y - 30) ** 2 < 14**2] = [0.9, 0.1, 0.1]
    img[(np.abs(x - 46) < 9) & (np.abs(y - 40) < 11)] = [0.1, 0.2, 0.8]
    return img.reshape(size, n, size, n, 3).mean(axis=(1, 3))


def rgba(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([img, np.ones_like(img[..., :1])], -1)).float()


def test_flat_colour_shapes_fit_to_40_db_with_few_paths():
    img = flat_shapes()
    result = fit_layer(rgba(img), None, VectorizeOptions(paths=12, iters=400, seed=1))
    svg = to_svg_string(result_document(result))
    value = psnr(resvg_render(svg)[..., :3], img)
    print(f"flat shapes: {result.num_paths} paths, resvg PSNR {value:.1f} dB in {result.seconds:.1f} s")
    assert result.num_paths <= 12
    assert value >= 40


@pytest.mark.parametrize("segments", [2, 3, 4, 5, 8])
def test_the_back_path_covers_a_non_square_canvas(segments):
    """A rectangle cut at perimeter quarters misses two corners of a non-square canvas."""
    from tools.vectorize.init import rectangle_path
    from tools.vectorize.render import render

    path = rectangle_path(-0.5, -0.5, 128.5, 85.5, segments)[None]
    alpha = render(path, torch.tensor([[0.2, 0.3, 0.4, 1.0]]), 85, 128)[..., 3]
    assert float(alpha.min()) > 0.999


def test_an_opaque_layer_stays_opaque_everywhere():
    """Its back path is its canvas: no optimiser step may open a corner or thin it out."""
    img = flat_shapes()[8:40]  # non-square, and few paths: the back path alone must cover the corners
    res = fit_layer(rgba(img), None, VectorizeOptions(paths=3, iters=100, seed=0))
    alpha = res.pathset().render(32, 64).image[..., 3]
    assert float(alpha.min()) > 0.999


def test_the_joint_pass_draws_every_layer_alone_and_their_stack_in_one_render():
    """Layers side by side on one strip: paths that reach past the canvas on either side must not
    leak into a neighbour's slot, and stacking the layers must give the picture of all paths at once."""
    from tools.vectorize.render import render
    from tools.vectorize.stack import layer_images

    gen = torch.Generator().manual_seed(3)
    circle = unit_circle(4).float()
    centres = torch.tensor([[-6.0, 20], [30, 10], [70, 25], [45, 30], [10, 5], [78, 12]])
    radii = torch.tensor([14.0, 9, 16, 12, 7, 11])
    points = centres[:, None] + radii[:, None, None] * circle[None]  # the first and third cross the edges
    colors = torch.rand(6, 4, generator=gen) * 0.8 + 0.2
    sizes = [1, 3, 2]
    images = layer_images(points, colors, sizes, (64, 40))
    stack = images[0]
    start = 0
    for n, image in zip(sizes, images, strict=True):
        alone = render(points[start : start + n], colors[start : start + n], 40, 64)
        assert float((image - alone).abs().max()) < 1e-3
        start += n
    for image in images[1:]:
        stack = image + (1 - image[..., 3:]) * stack
    assert float((stack - render(points, colors, 40, 64)).abs().max()) < 1e-3


def test_pruning_removes_a_covered_path_and_keeps_a_small_visible_one():
    c = unit_circle(4).float()
    points = torch.stack([c * 6 + 20, c * 15 + 20, c * 1.5 + 45])  # hidden, big opaque cover, small on top
    colors = torch.tensor([[1, 0, 0, 1.0], [0, 1, 0, 1.0], [0, 0, 1, 1.0]])
    for method, expect in (("occlusion", [False, True, True]), ("area", [True, True, True])):
        scores = prune_scores(points, colors, 64, 64, method)
        kept = keep_mask(scores, method, min_visible=0.6).tolist()
        print(method, [round(v, 2) for v in scores.tolist()], kept)
        assert kept == expect  # only occlusion-aware pruning sees that the first path is invisible


def test_mask_term_keeps_paint_inside_the_layer():
    img = flat_shapes()
    mask = torch.zeros(64, 64)
    mask[:, :32] = 1  # the layer is the left half
    target = rgba(img) * mask[..., None]
    outside = {}
    for weight in (0.0, 4.0):
        res = fit_layer(target, mask, VectorizeOptions(paths=24, iters=150, seed=0, mask_weight=weight))
        alpha = res.pathset().render(64, 64).image[..., 3]
        outside[weight] = float(alpha[:, 34:].sum())  # two columns of slack for anti-aliasing
        inside = float(alpha[:, :30].mean())
        print(f"mask weight {weight}: alpha outside the mask {outside[weight]:.2f} px, mean alpha inside {inside:.3f}")
        assert inside > 0.95
    assert outside[4.0] < 1.0
    assert outside[4.0] < outside[0.0]


def test_coarse_steps_render_at_half_size_and_fit_the_full_image(monkeypatch):
    """The first ``coarse_until`` of the steps see half the pixels when the ceiling leaves paths room
    there; paths stay in the layer's coordinates, so a fit that is coarse all the way through still
    lands on the full-size shapes."""
    import tools.vectorize.alv as alv

    sizes = []
    real = alv.render_rows

    def spy(points, colors, height, width, **kw):
        sizes.append((height, width))
        return real(points, colors, height, width, **kw)

    monkeypatch.setattr(alv, "render_rows", spy)
    img = flat_shapes()[:48]  # 48 x 64: both sides halve
    fit_layer(rgba(img), None, VectorizeOptions(paths=12, iters=100, seed=1, coarse_until=0.3))
    steps = sizes[:100]
    assert steps[:30] == [(24, 32)] * 30 and steps[30:] == [(48, 64)] * 70
    sizes.clear()  # a ceiling too dense for the half size (768 px / 100 paths < COARSE_ROOM) stays full size
    fit_layer(rgba(img), None, VectorizeOptions(paths=100, iters=20, seed=1, coarse_until=0.3))
    assert set(sizes) == {(48, 64)}
    fits = {c: fit_layer(rgba(img), None, VectorizeOptions(paths=12, iters=300, seed=1, coarse_until=c))
            for c in (0.0, 1.0)}
    values = {c: psnr(resvg_render(to_svg_string(result_document(r)))[..., :3], img) for c, r in fits.items()}
    print(f"all full size {values[0.0]:.1f} dB, all half size {values[1.0]:.1f} dB")
    assert values[1.0] >= 27 and values[1.0] >= values[0.0] - 8


def test_the_default_step_count_saves_steps_beyond_256_paths():
    steps = {p: VectorizeOptions(paths=p).steps for p in range(1, 5000)}
    assert steps[256] == 428 and steps[1024] == 652 and VectorizeOptions(paths=1024, iters=90).steps == 90
    assert all(steps[p + 1] - steps[p] in (0, 1) for p in range(1, 4999))  # never falls, never jumps
    assert all(steps[p] == 300 + p // 2 for p in range(1, 257))  # small budgets as before
    assert steps[2048] - steps[1024] == 512  # large budgets keep the half step per path


def test_same_seed_gives_the_same_svg():
    img = rgba(flat_shapes(48))
    svgs = [to_svg_string(result_document(fit_layer(img, None, VectorizeOptions(paths=20, iters=80, seed=s))))
            for s in (7, 7, 8)]
    assert svgs[0] == svgs[1]
    assert svgs[0] != svgs[2]


def test_ablation_switches_change_the_run():
    img = rgba(flat_shapes(48))
    base = VectorizeOptions(paths=20, iters=80, seed=0)
    runs = {name: fit_layer(img, None, VectorizeOptions(**{**base.to_dict(), **kw}))
            for name, kw in [("full", {}), ("no-add", {"add": False}), ("random-init", {"init": "random"})]}
    assert not any(h["added"] for h in runs["no-add"].history)
    assert any(h["added"] for h in runs["full"].history)
    assert not torch.equal(runs["full"].points[:5], runs["random-init"].points[:5])


def shaded_disc(size: int = 48) -> np.ndarray:
    """A disc lit from one side (a colour ramp across it) on a flat backdrop."""
    n = 8
    s = (np.arange(size * n) + 0.5) / n
    x, y = np.meshgrid(s, s)
    img = np.ones((size * n, size * n, 3)) * np.array([0.85, 0.9, 0.8])
    ramp = np.clip((x + 0.5 * y - 10) / 40, 0, 1)[..., None]
    inside = (x - 24) ** 2 + (y - 24) ** 2 < 17**2
    img[inside] = (np.array([0.9, 0.3, 0.1]) * (1 - ramp) + np.array([0.2, 0.2, 0.6]) * ramp)[inside]
    return img.reshape(size, n, size, n, 3).mean(axis=(1, 3))


def test_gradient_fills_fit_shading_that_flat_fills_cannot():
    img = shaded_disc()
    fits = {g: fit_layer(rgba(img), None, VectorizeOptions(paths=4, iters=200, seed=0, gradients=g))
            for g in (False, True)}
    values = {g: psnr(resvg_render(to_svg_string(result_document(r)))[..., :3], img) for g, r in fits.items()}
    print(f"shaded disc, 4 paths: flat {values[False]:.1f} dB, gradients {values[True]:.1f} dB (resvg)")
    assert fits[True].colors.shape[1] == 11 and fits[False].colors.shape[1] == 4
    assert values[True] >= values[False] + 5


def test_a_layered_run_with_gradients_writes_them_and_renders_as_resvg_does(tmp_path):
    photo = tmp_path / "disc.png"
    Image.fromarray((shaded_disc(64) * 255).round().astype(np.uint8)).save(photo)
    out = tmp_path / "run"
    assert main([str(photo), "--planner", "heuristic", "--out", str(out), "--paths", "24", "--iters", "30",
                 "--max-layers", "2", "--gradients", "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["options"]["vectorize"]["gradients"] is True
    text = (out / "result.svg").read_text()
    assert "<linearGradient " in text
    doc = read_svg(out / "result.svg")
    ours = doc.render(background=torch.ones(3)).image[..., :3].double().numpy()
    assert psnr(ours, resvg_render(text, background="#ffffff")[..., :3]) >= 35


def test_vectorize_command_takes_gradients(tmp_path):
    photo = tmp_path / "disc.png"
    Image.fromarray((shaded_disc(32) * 255).round().astype(np.uint8)).save(photo)
    for flag, expected in (("--gradients", True), ("--flat", False)):
        out = tmp_path / f"{flag[2:]}.svg"
        assert main(["vectorize", str(photo), "-o", str(out), "--paths", "6", "--iters", "40", flag, "--quiet"]) == 0
        assert ("<linearGradient " in out.read_text()) is expected


def test_segments_reach_the_written_paths(tmp_path):
    photo = tmp_path / "disc.png"
    Image.fromarray((shaded_disc(32) * 255).round().astype(np.uint8)).save(photo)
    for segments in (4, 6):
        out = tmp_path / f"{segments}.svg"
        assert main(["vectorize", str(photo), "-o", str(out), "--paths", "6", "--iters", "20", "--segments",
                     str(segments), "--quiet"]) == 0
        assert set(read_svg(out).layers[0].paths.segment_counts.tolist()) == {segments}
    assert run_options(*RUN_FLAGS).vectorize.segments == VectorizeOptions().segments
    assert run_options(*RUN_FLAGS, segments=6).vectorize.segments == 6  # what peel and batch pass on


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "shapes.png"
    Image.fromarray((flat_shapes(40) * 255).astype(np.uint8)).save(p)
    return p


def test_vectorize_command_writes_svg_and_preview(photo, tmp_path, capsys):
    out, prev = tmp_path / "out" / "shapes.svg", tmp_path / "prev.png"
    assert main(["vectorize", str(photo), "-o", str(out), "--paths", "16", "--iters", "60",
                 "--preview", str(prev), "--quiet"]) == 0
    doc = read_svg(out)
    assert (doc.width, doc.height) == (40, 40) and doc.layers[0].paths.num_paths <= 16
    ours = np.asarray(Image.open(prev).convert("RGBA"), dtype=np.float64) / 255
    assert psnr(premultiply(ours), premultiply(resvg_render(out.read_text()))) > 35


@pytest.mark.parametrize("case", ["missing", "corrupt", "mask-size", "paths-0", "not-svg", "bad-device", "segments-1"])
def test_vectorize_command_bad_input_is_one_line_and_exit_2(case, photo, tmp_path, capsys):
    out = str(tmp_path / "x.svg")
    args = {
        "missing": ["vectorize", str(tmp_path / "nope.png"), "-o", out],
        "corrupt": ["vectorize", str(tmp_path / "bad.png"), "-o", out],
        "mask-size": ["vectorize", str(photo), "-o", out, "--mask", str(tmp_path / "small.png")],
        "paths-0": ["vectorize", str(photo), "-o", out, "--paths", "0"],
        "not-svg": ["vectorize", str(photo), "-o", str(tmp_path / "x.png")],
        "bad-device": ["vectorize", str(photo), "-o", out, "--device", "tpu"],
        "segments-1": ["vectorize", str(photo), "-o", out, "--segments", "1"],
    }[case]
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    Image.new("L", (10, 10)).save(tmp_path / "small.png")
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    print(err)
    assert len(err.splitlines()) == 1 and err.startswith("amodal-agent: error:")
    assert "Traceback" not in err
    assert not (tmp_path / "x.svg").exists()
