"""The layer-quality benchmark's own parts (bench/peel.py, bench/peel_scenes.py), without full runs:
the scene generator and its amodal truth, the metrics on perfect and hand-made layers, the modal
baseline, and the oracle model's decisions. A wrong truth or metric would make every figure the
bench prints meaningless, so each is checked against numbers worked out by hand."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import peel
import peel_scenes as ps

from tools.segment import box_from_relative


@pytest.fixture(scope="module")
def scenes() -> list[ps.Scene]:
    return ps.make_scenes(6, seed=0)


def test_the_generator_is_deterministic_per_seed(scenes):
    again = ps.make_scene(3, seed=0)
    assert np.array_equal(again.image, scenes[3].image)
    assert [o.name for o in again.objects] == [o.name for o in scenes[3].objects]
    assert all(np.array_equal(a.alpha, b.alpha) and np.array_equal(a.rgb, b.rgb)
               for a, b in zip(again.objects, scenes[3].objects, strict=True))
    assert not np.array_equal(ps.make_scene(3, seed=1).image, scenes[3].image)


def test_scenes_have_two_to_four_objects_and_some_are_cut_by_the_frame(scenes):
    assert all(2 <= len(s.objects) <= 4 for s in scenes)
    assert any(o.cut for s in scenes for o in s.objects)
    for s in scenes:
        assert sum(o.cut for o in s.objects) <= 1
        for o in s.objects:
            outside = 1 - o.alpha_frame.sum() / o.alpha.sum()
            if o.cut:
                assert ps.CUT_OUTSIDE[0] <= outside <= ps.CUT_OUTSIDE[1]
            else:
                assert outside == 0
            soft = (o.alpha > 0) & (o.alpha < 1)
            assert soft.any()  # anti-aliased edges


def test_visible_masks_are_the_full_masks_minus_everything_in_front(scenes):
    for s in scenes:
        free = np.ones((ps.HEIGHT, ps.WIDTH), np.float32)
        for o in s.objects:  # front-most first
            assert np.allclose(o.visible_frame, o.alpha_frame * free, atol=1e-6)
            assert np.all(o.visible_frame <= o.alpha_frame + 1e-6)
            free *= 1 - o.alpha_frame
            assert o.visible_frame.sum() >= ps.MIN_VISIBLE * o.alpha_frame.sum() - 1e-3


def test_the_scene_is_the_truth_recomposited(scenes):
    """Visible parts plus the background where nothing covers it: an independent sum, not ``composite``."""
    for s in scenes:
        free = np.prod([1 - o.alpha_frame for o in s.objects], axis=0)[..., None]
        total = sum(o.visible_frame[..., None] * o.rgb_frame for o in s.objects) + free * s.background
        assert np.abs(total - s.image).max() < 1e-4
        assert np.array_equal(ps.composite(s), s.image)


def test_overlaps_are_in_the_asked_range(scenes):
    for s in scenes:
        shares = [ps.overlap_share(a.alpha, b.alpha) for i, a in enumerate(s.objects) for b in s.objects[i + 1:]]
        assert any(ps.OVERLAP[0] <= x <= ps.OVERLAP[1] for x in shares)
        assert all(x < ps.NO_OVERLAP or ps.OVERLAP[0] <= x <= ps.OVERLAP[1] for x in shares), shares


def test_moving_an_object_in_the_truth_moves_only_it(scenes):
    s = scenes[0]
    moved = ps.composite(s, {0: (36, 0)})
    front = ps.shift(s.objects[0].alpha, 36, 0)
    inside = ps.frame(front) > 0.999
    assert np.allclose(moved[inside], ps.frame(ps.shift(s.objects[0].rgb, 36, 0))[inside])
    untouched = (ps.frame(front) == 0) & (s.objects[0].alpha_frame == 0)
    assert np.array_equal(moved[untouched], s.image[untouched])


# ---------------------------------------------------------------------------------------- metrics


def _square_object() -> ps.TruthObject:
    """A 40x40 px square at frame (20..60, 20..60), its right half hidden behind something in front."""
    hc, wc = ps.HEIGHT + 2 * ps.MARGIN, ps.WIDTH + 2 * ps.MARGIN
    alpha = np.zeros((hc, wc), np.float32)
    m = ps.MARGIN
    alpha[m + 20:m + 60, m + 20:m + 60] = 1
    rgb = np.broadcast_to(np.array([0.2, 0.4, 0.6], np.float32), (hc, wc, 3)).copy()
    obj = ps.TruthObject("blue square", "rectangle", "flat", alpha, rgb)
    obj.visible_frame = obj.alpha_frame.copy()
    obj.visible_frame[:, 40:] = 0
    return obj


def test_a_perfect_layer_scores_one_zero_and_the_capped_psnr():
    for obj in [_square_object(), *ps.make_scene(1).objects]:
        perfect = np.dstack([obj.rgb_frame, obj.alpha_frame])
        m = ps.layer_metrics(perfect, obj)
        assert m["iou"] == 1.0 and m["spill"] == 0.0 and m["psnr_vis"] == ps.PSNR_CAP
        if ((obj.alpha_frame > 0.5) & ~(obj.visible_frame > 0.5)).any():
            assert m["recall"] == 1.0 and m["psnr_hid"] == m["psnr_hid_cov"] == ps.PSNR_CAP


def test_a_hand_made_imperfect_layer_gets_the_numbers_worked_out_by_hand():
    """The layer covers the visible half exactly, half of the hidden half in a colour 0.1 off, and
    spills 10 rows below the square's left half; the other hidden half is missing (white)."""
    obj = _square_object()
    rgba = np.zeros((ps.HEIGHT, ps.WIDTH, 4))
    rgba[20:60, 20:50] = [0.2, 0.4, 0.6, 1]
    rgba[20:60, 40:50, :3] += 0.1
    rgba[60:70, 20:40] = [0.2, 0.4, 0.6, 1]
    m = ps.layer_metrics(rgba, obj)
    assert m["iou"] == pytest.approx(1200 / 1800)  # 40x30 shared; union 1600 + 200 spilled
    assert m["recall"] == pytest.approx(0.5)  # 400 of the 800 hidden pixels
    assert m["spill"] == pytest.approx(200 / 1600)
    assert m["psnr_vis"] == ps.PSNR_CAP
    mse = (400 * 0.01 + 400 * (0.8**2 + 0.6**2 + 0.4**2) / 3) / 800  # 0.1 off, or white where nothing is
    assert m["psnr_hid"] == pytest.approx(-10 * math.log10(mse))
    assert m["psnr_hid_cov"] == pytest.approx(20.0)  # on the covered half only: 0.1 off everywhere


def test_masked_psnr_is_capped_and_nan_on_an_empty_mask():
    a = np.zeros((4, 4, 3))
    assert ps.masked_psnr(a, a, np.ones((4, 4), bool)) == ps.PSNR_CAP
    assert math.isnan(ps.masked_psnr(a, a, np.zeros((4, 4), bool)))
    assert ps.masked_psnr(a, a + 0.1, np.ones((4, 4), bool)) == pytest.approx(20.0)


def test_the_modal_baseline_leaves_a_white_hole():
    obj = _square_object()
    image = np.full((ps.HEIGHT, ps.WIDTH, 3), 0.3)
    image[obj.visible_frame > 0] = [0.2, 0.4, 0.6]
    out = peel.modal_move(image, obj.visible_frame, 30, 0)
    assert np.allclose(out[20:60, 20:40], 1.0)  # where the visible half was: a white hole
    assert np.allclose(out[20:60, 40:50], 0.3)  # the hidden half stays whatever hid it
    assert np.allclose(out[20:60, 50:70], [0.2, 0.4, 0.6])  # the visible half, pasted 30 px right
    assert np.allclose(out[:, 80:], 0.3) and np.allclose(out[:20], 0.3)


def test_greedy_matching_and_occlusion_order():
    s = ps.make_scene(1)  # four objects
    fulls = [o.alpha_frame for o in s.objects]
    layers = [fulls[2], fulls[0], np.zeros_like(fulls[0]), fulls[1]]  # back to front, one empty layer
    matches = peel.match_layers(layers, fulls)
    assert {k: li for k, (li, _) in matches.items()} == {0: 1, 1: 3, 2: 0}
    assert all(score == 1.0 for _, score in matches.values())
    found = {k: li for k, (li, _) in matches.items()}
    right, asked = peel.order_pairs(s, found)
    overlapping = [(k, j) for k in found for j in found if k < j
                   and ps.overlap_share(s.objects[k].alpha, s.objects[j].alpha) >= ps.NO_OVERLAP]
    wrong = [(k, j) for k, j in overlapping if not found[k] > found[j]]
    assert asked == len(overlapping) and right == asked - len(wrong)


def test_the_move_keeps_most_of_the_object_in_the_frame(scenes):
    for s in scenes:
        for o in s.objects:
            dx, dy = peel.move_for(o)
            assert 30 <= math.hypot(dx, dy) <= 40
            assert ps.frame(ps.shift(o.alpha, dx, dy)).sum() >= 0.5 * o.alpha.sum()


# ----------------------------------------------------------------------------------------- oracle


def _body(*results: dict) -> dict:
    return {"messages": [{"role": "system", "content": "..."}]
            + [{"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps(r)} for i, r in enumerate(results)]}


def _call(message: dict) -> tuple[str, dict]:
    fn = message["tool_calls"][0]["function"]
    return fn["name"], json.loads(fn["arguments"])


def test_qwen_boxes_come_back_as_the_visible_box_on_a_padded_canvas():
    box, offset, size = (0, 10, 50, 61), (20, 0), (ps.WIDTH + 20, ps.HEIGHT)
    x0, y0, x1, y1 = box_from_relative(peel.qwen_box(box, offset, size), *size)
    assert x0 <= 20 <= x0 + 1 and y0 <= 10 <= y0 + 1 and x1 - 1 <= 70 <= x1 and y1 - 1 <= 61 <= y1


def test_the_oracle_peels_front_to_back_and_pads_only_a_cut_object(scenes):
    s = next(s for s in scenes if any(o.cut for o in s.objects))
    oracle = peel.Oracle(s)
    steps, results = [], []
    for _ in range(4 * len(s.objects) + 4):
        name, args = _call(oracle(_body(*results)))
        steps.append(name)
        if name == "finish":
            break
        k = sum(1 for r in results if "residual_id" in r)
        if name == "segment":
            assert args["bbox_2d"] == peel.qwen_box(peel.visible_box(s.objects[k]), (0, 0), (ps.WIDTH, ps.HEIGHT))
            results.append({"mask_id": f"m{k}", "touches": list(s.objects[k].cut_sides), "area_fraction": 0.1})
        elif name == "pad_canvas":
            assert args["mask_id"] == f"m{k}" and 8 <= args["margin"] <= 512
            results.append({"mask_id": f"p{k}", "canvas_id": "c", "padding": {"left": 0, "top": 0, "right": 0,
                                                                              "bottom": 0}, "size": [ps.WIDTH,
                                                                                                     ps.HEIGHT]})
        else:
            assert name == "inpaint" and args["layer_name"] == s.objects[k].name
            assert args["mask_id"] == (f"p{k}" if s.objects[k].cut else f"m{k}")
            results.append({"layer_id": f"l{k}", "residual_id": f"r{k}", "method": "patchmatch", "layers": k + 1})
    expected = [step for o in s.objects for step in (["segment", "pad_canvas", "inpaint"] if o.cut
                                                     else ["segment", "inpaint"])] + ["finish"]
    assert steps == expected


def test_the_amodal_what_if_boxes_the_whole_shape_clipped_to_the_canvas(scenes):
    s = next(s for s in scenes if any(o.cut for o in s.objects))
    k = next(i for i, o in enumerate(s.objects) if o.cut)
    results = [{"layer_id": f"l{i}", "residual_id": f"r{i}"} for i in range(k)]
    name, args = _call(peel.Oracle(s, "amodal")(_body(*results)))
    box = peel.amodal_box(s.objects[k])
    assert name == "segment" and args["bbox_2d"] == peel.qwen_box(box, (0, 0), (ps.WIDTH, ps.HEIGHT))
    assert min(args["bbox_2d"]) >= 0 and max(args["bbox_2d"]) <= 1000
    assert box[0] < 0 or box[1] < 0 or box[2] > ps.WIDTH or box[3] > ps.HEIGHT  # it does reach past the frame


def test_the_targets_are_judged_on_unrounded_means():
    # a mean spill of 0.044 prints as 0.04 in the table; the target line must not read it as met
    objs = [{"iou": 0.95, "recall": 0.93, "spill": 0.044}, {"iou": 0.95, "recall": math.nan, "spill": 0.044}]
    line = peel.targets(objs, 9.2, 2, 1, 1)
    print(line)
    assert "spill 0.044 <= 0.04 NOT met" in line
    assert "IoU 0.950 >= 0.93 met" in line and "hidden recall 0.930 >= 0.92 met" in line
    assert "move +9.20 dB over modal >= +9 met" in line and "found 2/2 >= 2/3 met" in line
    assert "NOT met" not in peel.targets([{"iou": 1, "recall": 1, "spill": 0}] * 3, 10, 2, 4, 5)
