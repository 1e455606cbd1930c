"""The built-in planner's classical cues (``agent/heuristic.py``) on small scenes with known answers:
overlapping objects of different colours come out as separate candidates, the occluder is judged
to be in front by boundary ownership, and layers are named by colour and place."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest

from agent.cli import main
from agent.heuristic import describe, find_regions, in_front, pick_front

H, W = 96, 144
SAND, RED, BLUE = (200, 190, 150), (210, 50, 40), (40, 70, 200)


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W] + 0.5
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    out = np.zeros((H, W), bool)
    out[y0:y1, x0:x1] = True
    return out


def triangle(points: list[tuple[float, float]]) -> np.ndarray:
    import cv2

    out = np.zeros((H, W), np.uint8)
    cv2.fillPoly(out, [np.round(np.array(points)).astype(np.int32)], 1)
    return out.astype(bool)


def paint(*shapes: tuple[np.ndarray, tuple[int, int, int]], noise: float = 4.0) -> np.ndarray:
    """Shapes back to front over sand, with a little sensor noise so nothing is perfectly flat."""
    out = np.empty((H, W, 3), np.float64)
    out[:] = SAND
    for mask, colour in shapes:
        out[mask] = colour
    out += np.random.default_rng(0).normal(0, noise, out.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_overlapping_objects_of_different_colours_are_separate_candidates():
    back, front = rect(20, 20, 80, 70), disc(85, 60, 22)
    image = paint((back, BLUE), (front, RED))
    regions = find_regions(image)
    seen_back = back & ~front
    assert max(iou(r["mask"], front) for r in regions) > 0.85
    assert max(iou(r["mask"], seen_back) for r in regions) > 0.85
    assert not any(iou(r["mask"], back | front) > 0.7 for r in regions)  # never the two as one blob


def test_the_occluder_that_bites_a_notch_is_in_front():
    back, front = rect(20, 20, 80, 70), disc(85, 60, 22)
    seen_back = back & ~front
    assert in_front(front, seen_back) is True
    assert in_front(seen_back, front) is False


def test_a_straight_edged_occluder_is_in_front_by_its_junctions():
    # the triangle's tip is behind the box: what is left of it is still convex, so only the
    # T-junctions (the triangle's outline turns where it meets the box; the box's runs straight on) tell
    tri = triangle([(10, 20), (10, 80), (100, 50)])
    box = rect(70, 25, 120, 75)
    seen_tri = tri & ~box
    assert in_front(box, seen_tri) is True
    assert in_front(seen_tri, box) is False


def test_regions_that_barely_touch_have_no_order():
    assert in_front(disc(30, 40, 12), disc(80, 40, 12)) is None


def test_pick_front_takes_the_region_nothing_occludes():
    back, front = rect(20, 20, 80, 70), disc(85, 60, 22)
    regions = find_regions(paint((back, BLUE), (front, RED)))
    assert iou(pick_front(regions)["mask"], front) > 0.85


def test_a_shaded_object_is_one_candidate_and_a_big_one_still_counts():
    # radial shading slices a ball into rings of colour; no edge separates them, so they are one region
    ball = disc(72, 48, 40)
    yy, xx = np.mgrid[:H, :W] + 0.5
    shade = np.clip(1 - np.hypot(xx - 58, yy - 36) / 60, 0, 1)[..., None]
    image = paint((ball, BLUE)).astype(np.float64)
    image[ball] *= (0.45 + 0.8 * shade)[ball]
    regions = find_regions(np.clip(image, 0, 255).astype(np.uint8))
    assert len(regions) == 1 and iou(regions[0]["mask"], ball) > 0.95
    # a photo filled three quarters by one round thing (a retina scan, a colour wheel) on black
    big = ((yy - 48) / 46) ** 2 + ((xx - 72) / 70) ** 2 <= 1
    assert big.mean() > 0.7
    on_black = paint((~big, (0, 0, 0)), (big, RED))
    assert max(iou(r["mask"], big) for r in find_regions(on_black)) > 0.95


def test_a_region_no_one_colour_dominates_is_multicoloured():
    hues = np.linspace(0, 1, 600, endpoint=False)
    wheel = np.array([colorsys.hsv_to_rgb(h, 0.9, 0.9) for h in hues]) * 255
    assert describe(wheel.mean(0), (0.5, 0.5), wheel) == "multicoloured region, centre"
    reds = np.tile(np.array(RED, float), (50, 1))
    assert describe(reds.mean(0), (0.5, 0.5), reds) == "red region, centre"


@pytest.mark.parametrize(("colour", "centre", "name"), [
    ((210, 50, 40), (0.5, 0.5), "red region, centre"),
    ((40, 70, 200), (0.1, 0.1), "blue region, top left"),
    ((60, 170, 70), (0.9, 0.8), "green region, bottom right"),
    ((128, 128, 128), (0.5, 0.9), "grey region, bottom"),
    ((20, 20, 25), (0.2, 0.5), "black region, left"),
])
def test_layers_are_named_by_colour_and_place(colour, centre, name):
    assert describe(np.array(colour, float), centre) == name


def test_the_planner_peels_two_overlapping_objects_front_first(tmp_path):
    from PIL import Image

    back, front = rect(20, 20, 80, 70), disc(85, 60, 22)
    photo = tmp_path / "two.png"
    Image.fromarray(paint((back, BLUE), (front, RED))).save(photo)
    out = tmp_path / "run"
    code = main([str(photo), "--planner", "heuristic", "--out", str(out), "--paths", "24", "--iters", "20",
                 "--quiet", "--device", "cpu"])
    assert code == 0
    layers = json.loads((out / "manifest.json").read_text())["layers"]
    # back to front after the background: the disc, peeled first, ends on top
    # (the blue box is named by the part of it the disc's hole leaves seen, the left two thirds)
    assert [layer["name"] for layer in layers[1:]] == ["blue region, left", "red region, centre"]


def _call(i: int, name: str, args: dict) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}


def _result(i: int, reply: dict) -> dict:
    return {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps(reply)}


def _first_of_two(tmp_path):
    """A planner on a red disc beside a blue box, its first segment call, and the message showing the image."""
    from agent.artifacts import PREFIX, ArtifactStore
    from agent.heuristic import HeuristicPlanner

    store = ArtifactStore(tmp_path)
    red, blue = disc(35, 48, 18), rect(90, 25, 130, 75)
    residual = PREFIX + store.put(paint((red, RED), (blue, BLUE)))
    planner = HeuristicPlanner(store)
    shown = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": residual}}]}
    _, first, _ = planner.decide([shown])
    mask = red if first["bbox_2d"][0] < 300 else blue
    return planner, shown, first, store.put(mask.astype(np.uint8) * 255)


def test_a_refused_cut_sends_the_planner_to_another_object(tmp_path):
    planner, shown, first, mask_id = _first_of_two(tmp_path)
    messages = [shown, _call(1, "segment", first),
                _result(1, {"mask_id": mask_id, "area_fraction": 0.1, "touches": []}),
                _call(2, "inpaint", {"mask_id": mask_id, "layer_name": first["target"]}),
                _result(2, {"error": "only 0 of the mask's 900 pixels are outside the layers already peeled"})]
    name, second, _ = planner.decide(messages)
    assert name == "segment" and second["bbox_2d"] != first["bbox_2d"]  # not "finish", not the same box


def test_a_segment_that_fell_back_to_the_ellipse_sends_the_planner_to_another_object(tmp_path):
    # GrabCut found only a speck in the first box and the tool answered with the box's inscribed ellipse
    planner, shown, first, mask_id = _first_of_two(tmp_path)
    note = "GrabCut found only 17 px in the box; used the ellipse inscribed in it"
    reply = {"mask_id": mask_id, "area_fraction": 0.1, "touches": [], "note": note, "guessed": True}
    name, second, _ = planner.decide([shown, _call(1, "segment", first), _result(1, reply)])
    assert name == "segment" and second["bbox_2d"] != first["bbox_2d"]  # not inpaint, not the same box
    # a note alone (GrabCut had to shrink a whole-image box, say) is no guess: the mask is used
    del reply["guessed"]
    name, _, _ = planner.decide([shown, _call(1, "segment", first), _result(1, reply)])
    assert name == "inpaint"


def test_after_a_rejected_segment_the_planner_reads_the_residual_not_the_mask_preview(tmp_path):
    # The tool's reply comes with a preview of the mask (everything outside it dimmed) as the newest
    # image of the conversation; the next box must come from the residual, where the other object is.
    from agent.artifacts import PREFIX

    planner, shown, first, mask_id = _first_of_two(tmp_path)
    reply = {"mask_id": mask_id, "area_fraction": 0.1, "touches": [], "guessed": True}
    residual = planner.store.load(shown["content"][0]["image_url"]["url"], "RGB")
    preview = np.where(planner.store.load(mask_id, "L")[..., None] > 0, residual, residual // 8)
    url = PREFIX + planner.store.put(preview)
    previewed = {"role": "user", "content": [{"type": "text", "text": "Mask preview."},
                                             {"type": "image_url", "image_url": {"url": url}}]}
    plain = planner.decide([shown, _call(1, "segment", first), _result(1, reply)])
    with_preview = planner.decide([shown, _call(1, "segment", first), _result(1, reply), previewed])
    assert plain[0] == "segment" and plain[1]["bbox_2d"] != first["bbox_2d"]
    assert with_preview[:2] == plain[:2]


def test_the_planner_does_not_take_the_fill_of_a_peeled_hole_for_an_object(tmp_path):
    # an inpainter filled the hole of the object peeled first with a copy of the red object beside it;
    # a red region inside the hole is fill, so the planner goes for the real red object
    from agent.artifacts import PREFIX, ArtifactStore
    from agent.heuristic import HeuristicPlanner

    store = ArtifactStore(tmp_path)
    hole, real = disc(40, 48, 22), disc(110, 48, 14)
    copy = disc(40, 48, 16)
    mask_id = store.put(hole.astype(np.uint8) * 255)
    residual_id = store.put(paint((real, RED), (copy, RED)))

    messages = [
        _call(1, "segment", {"target": "blue region, left", "bbox_2d": [100, 200, 450, 800]}),
        _result(1, {"mask_id": mask_id, "area_fraction": float(hole.mean()), "touches": []}),
        _call(2, "inpaint", {"mask_id": mask_id, "layer_name": "blue region, left"}),
        _result(2, {"layer_id": "x", "residual_id": residual_id, "layers": 1}),
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PREFIX + residual_id}}]},
    ]
    name, args, _ = HeuristicPlanner(store).decide(messages)
    assert name == "segment"
    x0, _, x1, _ = (v / 1000 * W for v in args["bbox_2d"])
    assert x0 > 80 and x1 > 110  # the box is round the real object on the right, not the copy
