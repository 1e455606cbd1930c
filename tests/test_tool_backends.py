"""CPU-default image backends of the segment, inpaint and pad_canvas tools, on small real images."""

import hashlib

import numpy as np
import pytest
import skimage.data
from agent_script import CUP, CUP_BODY, NOT_CUP
from PIL import Image

from tools.inpaint import (
    INPAINTERS,
    PatchMatchInpainter,
    TeleaInpainter,
    choose_inpainter,
    dilate,
)
from tools.mask_cleanup import drop_neighbours
from tools.pad_canvas import PadResult, default_margin, pad_and_outpaint, pad_sides
from tools.segment import (
    SEGMENTERS,
    GrabCutSegmenter,
    box_from_relative,
    mask_stats,
    overlay,
    point_discs,
)

H, W = 48, 64
DISC_C, DISC_R = (20, 24), 11  # (x, y), radius
RECT = (44, 8, 58, 40)  # x0, y0, x1, y1 (half-open)
BG = np.array([120, 110, 95])


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Striped, noisy brown background with a red disc and a blue rectangle; returns image, disc, rect."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W]
    img = BG + 12 * np.sin(xx / 2.0)[..., None] + rng.normal(0, 6, (H, W, 3))
    disc = (xx - DISC_C[0]) ** 2 + (yy - DISC_C[1]) ** 2 <= DISC_R**2
    rect = np.zeros((H, W), bool)
    rect[RECT[1]:RECT[3], RECT[0]:RECT[2]] = True
    img[disc] = (200, 40, 40)
    img[rect] = (40, 80, 200)
    return np.clip(img, 0, 255).astype(np.uint8), disc, rect


@pytest.fixture(scope="module")
def scene():
    return _scene()


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    """scikit-image's coffee photo (600x400) at 128x85."""
    return np.asarray(Image.fromarray(skimage.data.coffee()).resize((128, 85), Image.LANCZOS))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# --- segment ---------------------------------------------------------------------------------------

def test_registries_hold_available_cpu_defaults():
    for registry in (SEGMENTERS, INPAINTERS):
        for name, cls in registry.items():
            assert cls.name == name
            ok, where = cls.available()
            assert isinstance(where, str) and where and "\n" not in where
            # the CPU defaults need no download; a model backend says what to set while its file is missing
            assert ok == (name not in ("lama", "flux", "sam", "sam3")), where
    assert INPAINTERS["lama"].available()[1].startswith("no big-lama.pt: curl -L --create-dirs -o ")


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([0, 0, 1000, 1000], (0, 0, 64, 48)),
        ([250, 500, 750, 1000], (16, 24, 48, 48)),
        ([750, 1000, 250, 500], (16, 24, 48, 48)),  # swapped corners are reordered
        ([-50, -10, 1200, 1100], (0, 0, 64, 48)),  # spills past the frame: clipped
        ([500, 500, 500, 500], (32, 24, 33, 25)),  # degenerate: still 1 px
        ([1000, 1000, 1000, 1000], (63, 47, 64, 48)),  # on the far edge: 1 px inside the frame
        ((101.5, 20, 899.9, 980.2), (6, 0, 58, 48)),  # floats round outward
        (np.array([0, 0, 500, 500]), (0, 0, 32, 24)),
    ],
)
def test_box_from_relative(bbox, expected):
    assert box_from_relative(bbox, W, H) == expected


@pytest.mark.parametrize(
    "bad", [[1, 2, 3], [1, 2, 3, 4, 5], [0, 0, float("nan"), 10], [0, 0, float("inf"), 10], ["0", "0", "9", "9"],
            None, 5, [True, 0, 10, 10], "0,0,10,10"],
)
def test_box_from_relative_rejects_malformed(bad):
    with pytest.raises(ValueError, match="4 finite numbers"):
        box_from_relative(bad, W, H)


def test_grabcut_finds_the_disc_and_the_rectangle(scene):
    img, disc, rect = scene
    seg = GrabCutSegmenter()
    res = seg.segment(img, (DISC_C[0] - 15, DISC_C[1] - 15, DISC_C[0] + 16, DISC_C[1] + 16))
    assert res.mask.dtype == bool and res.mask.shape == (H, W)
    assert res.note is None and not res.guessed
    assert _iou(res.mask, disc) >= 0.8
    res = seg.segment(img, (RECT[0] - 4, RECT[1] - 4, RECT[2] + 4, RECT[3] + 4))
    assert _iou(res.mask, rect) >= 0.8


def test_grabcut_from_a_relative_box(scene):
    img, disc, _ = scene
    box = box_from_relative([60, 150, 600, 850], W, H)
    assert _iou(GrabCutSegmenter().segment(img, box).mask, disc) >= 0.8


def test_grabcut_is_deterministic(scene, coffee):
    img, _, _ = scene
    seg = GrabCutSegmenter()
    for image, box in ((img, (3, 7, 38, 42)), (coffee, (36, 2, 90, 62))):
        hashes = {_sha(seg.segment(image, box, seed=7).mask) for _ in range(3)}
        assert len(hashes) == 1


def test_grabcut_tiny_box_gives_an_ellipse_with_a_note(scene):
    img, _, _ = scene
    res = GrabCutSegmenter().segment(img, (10, 10, 13, 20))
    assert res.note and "ellipse" in res.note and res.guessed
    assert res.mask.any() and not res.mask[:, :10].any() and not res.mask[:, 13:].any()
    one = GrabCutSegmenter().segment(img, (5, 5, 6, 6)).mask
    assert one.sum() == 1 and one[5, 5]


def test_grabcut_whole_image_box(scene):
    img, _, _ = scene
    res = GrabCutSegmenter().segment(img, (0, 0, W, H))
    assert res.note and "whole image" in res.note and not res.guessed  # a note, but a real mask
    assert res.mask.any() and not res.mask.all()


def test_grabcut_falls_back_when_nothing_is_found():
    flat = np.full((32, 32, 3), 128, np.uint8)
    res = GrabCutSegmenter().segment(flat, (8, 8, 24, 24))
    assert res.mask.any()
    assert res.mask[8:24, 8:24].sum() == res.mask.sum()  # whatever it returns stays in the box
    if res.note is not None:
        assert "ellipse" in res.note or "GrabCut" in res.note


def test_grabcut_speck_counts_as_nothing_found(scene, monkeypatch):
    """A few pixels in a box the model says an object fills are GrabCut's failure, not the object."""
    import cv2

    def speck(img, labels, rect, bgd, fgd, iterations, mode):
        labels[:] = cv2.GC_BGD
        labels[rect[1] + 3, rect[0] + 3] = cv2.GC_PR_FGD

    monkeypatch.setattr(cv2, "grabCut", speck)
    img, disc, _ = scene
    res = GrabCutSegmenter().segment(img, (DISC_C[0] - 12, DISC_C[1] - 12, DISC_C[0] + 12, DISC_C[1] + 12))
    assert res.note == "GrabCut found only 1 px in the box; used the ellipse inscribed in it" and res.guessed
    assert _iou(res.mask, disc) >= 0.8


def test_grabcut_seeds_the_box_core_when_its_ring_holds_the_objects_colour():
    """In the peel, an earlier layer's hole is often filled with the continuation of the object behind
    it, so the ring GrabCut learns the background from holds the object's own colour, and from the box
    alone every colour reads as background. The box's core is then taken for the object, and the mask
    says it is a guess."""
    h, w = 90, 130
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (230, 130, 40)
    disc = (xx - 65) ** 2 + (yy - 45) ** 2 <= 12 ** 2
    painted = ((abs(yy - 45) < 14) & (((xx >= 38) & (xx < 53)) | ((xx >= 78) & (xx < 93)))
               | ((yy >= 18) & (yy < 33) & (abs(xx - 65) < 14)))
    img[disc | painted] = (50, 70, 200)
    img = np.clip(img.astype(int) + np.random.default_rng(0).integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    res = GrabCutSegmenter().segment(img, (53, 33, 78, 58))
    assert res.guessed and "core" in res.note
    assert _iou(res.mask, disc) >= 0.9


def test_grabcut_on_coffee_finds_the_cup_top(coffee):
    res = GrabCutSegmenter().segment(coffee, (36, 2, 90, 62))
    stats = mask_stats(res.mask)
    assert res.mask[30, 60]  # the crema in the middle of the cup
    assert not res.mask[2, 36] and not res.mask[61, 89]  # box corners are table/saucer
    assert 0.05 <= stats["area_fraction"] <= 0.3
    x0, y0, x1, y1 = stats["bbox"]
    assert x0 >= 36 and y0 >= 2 and x1 <= 90 and y1 <= 62
    assert stats["touches"] == []


def test_grabcut_points_part_the_cup_from_the_saucer_of_its_colour(coffee):
    """From the box alone GrabCut keeps the cup's rim and coffee (and, grown again from the box's core,
    a sliver of the body): its red body reads as the red saucer round the box. Points on the body and
    on the saucer (what a model does after seeing the preview) bring the body, shadowed foot and
    handle in and keep the saucer out, well beyond the points' discs."""
    h, w = coffee.shape[:2]
    box = box_from_relative(CUP, w, h)
    body = [(x * w / 1000, y * h / 1000) for x, y in CUP_BODY]
    saucer = [(x * w / 1000, y * h / 1000) for x, y in NOT_CUP]
    alone = GrabCutSegmenter().segment(coffee, box).mask
    pointed = GrabCutSegmenter().segment(coffee, box, points=body, exclude=saucer)
    below_rim = np.zeros((h, w), bool)
    below_rim[48:57] = True  # the body's rows, under the rim and over the saucer
    off_points = below_rim & ~point_discs((h, w), body)
    assert (pointed.mask & off_points).sum() >= 100 and pointed.note is None and not pointed.guessed
    assert (alone & below_rim).sum() <= 0.1 * (pointed.mask & off_points).sum()
    assert not any(pointed.mask[int(y), int(x)] for x, y in saucer)
    assert not pointed.mask[box[3] - 2:box[3], box[0]:box[0] + 4].any()  # the saucer in the box's corner
    assert alone.sum() < pointed.mask.sum() <= 1.5 * alone.sum()  # the body, not the saucer


def test_grabcut_takes_in_a_point_outside_its_box(scene):
    """A point beyond the box says the object goes on there: the box grows to take it in."""
    img, disc, _ = scene
    ys, xs = np.nonzero(disc)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) - 6, int(ys.max()) + 1)  # short of the disc's right side
    short = GrabCutSegmenter().segment(img, box).mask
    res = GrabCutSegmenter().segment(img, box, points=[(float(xs.max()) - 1.5, float(ys.mean()))]).mask
    assert not short[:, box[2]:].any() and res[:, box[2]:].any()
    assert _iou(res, disc) > _iou(short, disc) and _iou(res, disc) >= 0.9


def _two_objects() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """A flat purple square on the striped background with a pale grey neighbour reaching into the
    square's box corner; returns image, square, neighbour, the square's box."""
    img, _, _ = _scene()
    yy, xx = np.mgrid[:H, :W]
    square = (np.abs(xx - 24) + np.abs(yy - 24) <= 16) & (xx >= 10) & (xx < 38) & (yy >= 10) & (yy < 38)
    neighbour = (xx + yy >= 62) & ~square
    img[neighbour] = (215, 215, 205)
    img[square] = (150, 60, 190)
    return img, square, neighbour, (10, 10, 38, 38)


def test_drop_neighbours_takes_a_neighbours_piece_out_of_the_box():
    img, square, neighbour, box = _two_objects()
    inside = np.zeros((H, W), bool)
    inside[box[1]:box[3], box[0]:box[2]] = True
    grabbed = square | (neighbour & inside)  # what GrabCut keeps when the box holds both
    assert (neighbour & inside).sum() >= 0.05 * grabbed.sum()
    out = drop_neighbours(img, grabbed, box)
    assert out.sum() >= square.sum() - 4 and (out & square).sum() >= square.sum() - 4
    assert not (out & neighbour).any()


def test_drop_neighbours_reads_the_box_sides_the_mask_reaches():
    # a box drawn round every pixel the object tints can reach past its mask (a sharp corner's faint
    # tip): that side says nothing of the piece, which is still the neighbour's
    img, square, neighbour, (x0, y0, x1, y1) = _two_objects()
    inside = np.zeros((H, W), bool)
    inside[y0:y1, x0:x1] = True
    out = drop_neighbours(img, square | (neighbour & inside), (x0 - 3, y0, x1, y1))
    assert not (out & neighbour).any() and (out & square).sum() >= square.sum() - 4


def test_drop_neighbours_keeps_two_toned_and_shaded_objects_whole():
    img, square, neighbour, box = _two_objects()
    # the same piece, but now the object itself: without it the rest no longer spans the box
    two_tone = img.copy()
    two_tone[square & (np.mgrid[:H, :W][0] >= 28)] = (230, 230, 220)
    assert (drop_neighbours(two_tone, square, box) == square).all()
    # a second tone in the corner of a block: the rest still spans the box, but the piece fills the
    # rest's notch where a neighbour would bulge out of it
    yy, xx = np.mgrid[:H, :W]
    block = (xx >= 10) & (xx < 38) & (yy >= 10) & (yy < 38)
    corner = img.copy()
    corner[block] = (150, 60, 190)
    corner[block & (xx >= 25) & (yy >= 25)] = (215, 215, 205)
    assert (drop_neighbours(corner, block, box) == block).all()
    # the same colours reached by shading: two colour clusters, but no edge between them
    whole = square | (neighbour & (xx < box[2]) & (yy < box[3]))
    t = np.clip((xx + yy - 50) / 20, 0, 1)[..., None]
    shaded = img.copy()
    shaded[whole] = ((1 - t) * np.array([150, 60, 190]) + t * np.array([215, 215, 205]))[whole].round()
    assert (drop_neighbours(shaded, whole, box) == whole).all()


def test_mask_stats():
    m = np.zeros((10, 20), bool)
    m[2:5, 3:8] = True
    assert mask_stats(m) == {"area_fraction": 0.075, "bbox": [3, 2, 8, 5], "touches": []}
    m[9, 19] = True
    assert mask_stats(m)["touches"] == ["right", "bottom"]
    m[0, 0] = True
    assert mask_stats(m)["touches"] == ["left", "top", "right", "bottom"]
    assert mask_stats(m)["bbox"] == [0, 0, 20, 10]
    third = np.zeros((3, 1), bool)
    third[1] = True
    assert mask_stats(third) == {"area_fraction": 0.3333, "bbox": [0, 1, 1, 2], "touches": ["left", "right"]}
    assert mask_stats(np.zeros((4, 4), bool)) == {"area_fraction": 0.0, "bbox": None, "touches": []}


def test_overlay(scene):
    img, disc, _ = scene
    out = overlay(img, disc)
    assert out.shape == img.shape and out.dtype == np.uint8
    outline = (out == (255, 0, 255)).all(-1)
    assert outline[disc].any() and not outline[~disc].any()
    assert (out[~disc] < img[~disc]).mean() > 0.9  # dimmed outside
    core = disc & ~outline
    assert core.any() and (out[core] == img[core]).all()


# --- inpaint ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["patchmatch", "telea"])
def test_inpaint_fills_the_hole_with_background(scene, name):
    img, disc, _ = scene
    hole = dilate(disc, 2)
    out = INPAINTERS[name]().inpaint(img, hole, seed=0)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[~hole] == img[~hole]).all()
    ring = dilate(hole, 4) & ~hole
    assert np.abs(out[hole].mean(0) - img[ring].mean(0)).max() <= 25
    assert (np.abs(out[hole].astype(int) - (200, 40, 40)).sum(-1) > 60).all()  # no red left


@pytest.mark.parametrize("name", ["patchmatch", "telea"])
def test_inpaint_on_coffee_table(coffee, name):
    hole = np.zeros(coffee.shape[:2], bool)
    hole[20:36, 104:120] = True  # wood, right of the saucer
    out = INPAINTERS[name]().inpaint(coffee, hole, seed=3)
    assert (out[~hole] == coffee[~hole]).all()
    ring = dilate(hole, 4) & ~hole
    assert np.abs(out[hole].mean(0) - coffee[ring].mean(0)).max() <= 25


def test_inpaint_empty_and_full_holes(scene):
    img, _, _ = scene
    for cls in (PatchMatchInpainter, TeleaInpainter):
        assert (cls().inpaint(img, np.zeros((H, W), bool)) == img).all()
        with pytest.raises(ValueError, match="whole image"):
            cls().inpaint(img, np.ones((H, W), bool))
        with pytest.raises(ValueError, match="does not match"):
            cls().inpaint(img, np.zeros((H, W + 1), bool))


def test_patchmatch_is_deterministic(coffee):
    hole = np.zeros(coffee.shape[:2], bool)
    hole[30:55, 40:70] = True
    pm = PatchMatchInpainter()
    assert len({_sha(pm.inpaint(coffee, hole, seed=11)) for _ in range(3)}) == 1


def test_dilate():
    m = np.zeros((15, 15), bool)
    m[7, 7] = True
    d = dilate(m, 3)
    yy, xx = np.mgrid[:15, :15]
    assert (d == ((yy - 7) ** 2 + (xx - 7) ** 2 <= 9)).all()
    assert (dilate(m, 0) == m).all() and dilate(m, 0) is not m


def test_choose_inpainter_auto_and_explicit():
    cls, note = choose_inpainter("auto")
    assert cls is PatchMatchInpainter
    assert note.startswith("lama unavailable (no big-lama.pt: curl ")
    assert note.endswith("; used patchmatch")
    assert choose_inpainter("patchmatch") == (PatchMatchInpainter, None)
    assert choose_inpainter(" Telea ") == (TeleaInpainter, None)


def test_choose_inpainter_named_but_missing():
    with pytest.raises(ValueError, match=r"^flux is not available: no FLUX.1 Fill weights: .*; call inpaint with "
                                         r"method=auto$"):
        choose_inpainter("flux")
    with pytest.raises(ValueError, match=r"^lama is not available: no big-lama\.pt: .*; call inpaint with "
                                         r"method=auto$"):
        choose_inpainter("lama")


def test_choose_inpainter_unknown_lists_valid_methods():
    with pytest.raises(ValueError, match="unknown inpaint method 'sd'; valid methods: auto, lama, patchmatch"):
        choose_inpainter("sd")


def test_choose_inpainter_without_patchmatch(monkeypatch):
    monkeypatch.setattr(PatchMatchInpainter, "available", classmethod(lambda cls: (False, "no libpatchmatch.so")))
    cls, note = choose_inpainter("auto")
    assert cls is TeleaInpainter
    assert note.startswith("lama unavailable (no big-lama.pt") and note.endswith(
        "; patchmatch unavailable (no libpatchmatch.so); used telea")
    with pytest.raises(ValueError, match=r"patchmatch is not available: no libpatchmatch\.so"):
        choose_inpainter("patchmatch")
    monkeypatch.setattr(TeleaInpainter, "available", classmethod(lambda cls: (False, "no cv2")))
    with pytest.raises(ValueError, match="no inpainting backend is available"):
        choose_inpainter("auto")


# --- pad_canvas ------------------------------------------------------------------------------------

def test_the_default_margin_is_as_far_as_the_completion_may_reach():
    mask = np.zeros((100, 100), bool)
    mask[:20, :20] = True  # 400 px: the completion reaches 0.75 x 20 = 15 px past what is seen
    assert default_margin(mask) == 15
    assert default_margin(mask[:3, :3]) == 8  # at least the schema's minimum
    assert default_margin(np.ones((1000, 1000), bool)) == 512  # at most its maximum


def test_pad_sides():
    assert pad_sides(["left", "bottom"], 16) == {"left": 16, "top": 0, "right": 0, "bottom": 16}
    assert pad_sides([], 16) == {"left": 0, "top": 0, "right": 0, "bottom": 0}
    with pytest.raises(ValueError, match="unknown side"):
        pad_sides(["up"], 4)
    with pytest.raises(ValueError, match=">= 0"):
        pad_sides(["left"], -1)


@pytest.mark.parametrize("inpainter", [None, TeleaInpainter])
def test_pad_and_outpaint_geometry(scene, inpainter):
    img, _, _ = scene
    yy, xx = np.mgrid[:H, :W]
    cut = (xx - 2) ** 2 + (yy - 44) ** 2 <= 10**2  # a disc cut off by the left and bottom edges
    img = img.copy()
    img[cut] = (200, 40, 40)
    sides = pad_sides(mask_stats(cut)["touches"], 12)
    assert sides == {"left": 12, "top": 0, "right": 0, "bottom": 12}
    res = pad_and_outpaint(img, cut, sides, seed=0, inpainter=inpainter)
    assert isinstance(res, PadResult)
    assert res.offset == (12, 0) and res.size == (W + 12, H + 12)
    assert res.image.shape == (H + 12, W + 12, 3) and res.image.dtype == np.uint8
    assert res.mask.shape == (H + 12, W + 12) and res.mask.dtype == bool
    assert (res.image[0:H, 12:12 + W] == img).all()
    assert (res.mask[0:H, 12:12 + W] == cut).all() and res.mask.sum() == cut.sum()
    assert mask_stats(res.mask)["touches"] == []
    border = np.ones(res.mask.shape, bool)
    border[0:H, 12:12 + W] = False
    assert (res.image[border].sum(-1) > 60).all()  # filled, no black frame
    far = border.copy()
    far[H - 12:, :24] = False  # away from the red disc, the border continues the background
    assert np.abs(res.image[far].mean(0) - BG).max() <= 25
    if inpainter is None:
        assert res.note.startswith("flux unavailable (no FLUX.1 Fill weights")
        assert res.note.endswith("; used patchmatch")
        assert "; lama unavailable (no big-lama.pt" in res.note
    else:
        assert res.note is None


def test_pad_and_outpaint_is_deterministic_and_a_noop_without_sides(scene):
    img, disc, _ = scene
    sides = {"top": 8, "right": 8}
    a = pad_and_outpaint(img, disc, sides, seed=5, inpainter=PatchMatchInpainter)
    b = pad_and_outpaint(img, disc, sides, seed=5, inpainter=PatchMatchInpainter())
    assert _sha(a.image) == _sha(b.image) and a.offset == (0, 8) and a.size == (W + 8, H + 8)
    same = pad_and_outpaint(img, disc, {}, inpainter=PatchMatchInpainter)
    assert (same.image == img).all() and (same.mask == disc).all() and same.offset == (0, 0)
    with pytest.raises(ValueError, match="unknown side"):
        pad_and_outpaint(img, disc, {"up": 3})
