"""The agent end to end against a local OpenAI-compatible server serving scripted Qwen3-VL answers
through the real ``openai`` client: peeling, quirks, schema errors, budgets, planners, replay."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from agent_script import NOT_CUP, coffee_photo, coffee_script, never_finishes
from langgraph.checkpoint.memory import MemorySaver
from PIL import Image
from scripted_server import ScriptedServer

from agent import prompts
from agent.cli import main
from agent.context import RunOptions
from agent.replay import rerun_run, show_run
from agent.run import run_peel
from agent.trace import read_trace
from tools.svg import INKSCAPE_NS, SVG_NS
from tools.vectorize.options import VectorizeOptions

FAST_PATHS = 96


def fast(**kw) -> dict:
    """Settings of a small, quick run: 96 paths, 25 steps per layer, on the CPU, quiet."""
    return {"quiet": True, "vectorize": VectorizeOptions(paths=FAST_PATHS, iters=25, device="cpu"), **kw}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return coffee_photo(tmp_path_factory.mktemp("photo") / "coffee.png")


@pytest.fixture(scope="module")
def scripted_run(photo, tmp_path_factory):
    """One recorded 3-object peel, shared by several tests (the server is stopped afterwards)."""
    out = tmp_path_factory.mktemp("runs") / "coffee"
    with ScriptedServer(coffee_script()) as srv:
        report = run_peel(RunOptions(image=photo, out=out, planner="vlm", vlm_url=srv.url, hints=[
            "keep the spoon separate from the saucer"], **fast()), checkpointer=MemorySaver())
        requests = list(srv.requests)
    return report, requests


def test_three_object_peel_gives_four_layers_in_scripted_order(scripted_run):
    report, requests = scripted_run
    assert report.status == "finished", report.reason
    root = ET.parse(report.run_dir / "result.svg").getroot()
    groups = root.findall(f"{{{SVG_NS}}}g")
    assert [g.get("id") for g in groups] == ["layer-00-background", "layer-01-saucer", "layer-02-spoon",
                                             "layer-03-cup"]
    assert [g.get(f"{{{INKSCAPE_NS}}}label") for g in groups] == ["background", "saucer", "spoon", "cup"]
    assert all(len(g.findall(f"{{{SVG_NS}}}path")) > 0 for g in groups)
    layers = sorted(p.name for p in (report.run_dir / "layers").iterdir())
    assert layers == ["00-background.png", "01-saucer.png", "02-spoon.png", "03-cup.png"]
    m = json.loads((report.run_dir / "manifest.json").read_text())
    assert m["planner"] == "vlm" and m["model"] == "Qwen/Qwen3-VL-8B-Instruct"
    assert m["result"]["layers"] == 4 and m["result"]["measured_with"] == "resvg"
    assert m["result"]["psnr"] > 15 and 0 < m["result"]["ssim"] <= 1
    assert sum(e["paths"] for e in m["layers"]) == m["result"]["paths"] <= FAST_PATHS + 4 * 8
    assert set(m["prompt_hashes"]) == {"system", "observe", "nudge", "fork_hint"} and m["tool_schema_hash"]
    assert m["backends"]["segment"] == ["grabcut"] and m["backends"]["inpaint"] == ["patchmatch"]
    assert any("lama unavailable (no big-lama.pt" in n for n in m["notes"])  # the fallback is reported
    # the hint reached the system prompt, and nothing was streamed
    assert "keep the spoon separate from the saucer" in requests[0]["messages"][0]["content"]
    assert all(not r.get("stream") for r in requests)


def test_the_cup_layer_holds_the_cup_body_the_points_brought_in(scripted_run):
    """The script's second segment call points at the cup's red body and handle and at the saucer and
    spoon round them: the cup layer holds the body well beyond the points, and none of the rest."""
    cup = np.asarray(Image.open(scripted_run[0].run_dir / "layers" / "03-cup.png"))[..., 3] / 255
    h, w = cup.shape
    band = cup[int(0.56 * h):int(0.66 * h)] > 0.5  # the rows of the body, under the rim and over the saucer
    assert band.sum() >= 100
    assert all(cup[int(y * h / 1000), int(x * w / 1000)] == 0 for x, y in NOT_CUP)


def test_every_qwen_quirk_was_parsed(scripted_run):
    events = read_trace(scripted_run[0].run_dir / "trace.jsonl")
    quirks = set()
    for e in events:
        if e["type"] == "llm_response":
            quirks.update(e["payload"]["parsed"]["quirks"])
    assert {"reasoning_content", "tool_call_in_content", "think_block", "missing_brace", "json_fence"} <= quirks
    reasoning = [e["payload"]["parsed"]["reasoning"] for e in events if e["type"] == "llm_response"]
    assert any("front-most" in r for r in reasoning) and any("spoon mask is clean" in r for r in reasoning)


def test_schema_error_goes_back_to_the_model_and_the_corrected_call_succeeds(scripted_run):
    events = read_trace(scripted_run[0].run_dir / "trace.jsonl")
    results = [e["payload"] for e in events if e["type"] == "tool_result" and e["payload"]["name"] == "segment"]
    errors = [r for r in results if "error" in r["result"]]
    assert len(errors) == 1 and "bbox_2d" in errors[0]["result"]["error"]
    after = results[results.index(errors[0]) + 1]
    assert "mask_id" in after["result"]
    _, requests = scripted_run
    tool_msgs = [m for r in requests for m in r["messages"] if m["role"] == "tool"]
    assert any("invalid arguments" in m["content"] for m in tool_msgs)  # the model saw the error


def test_every_reply_the_model_read_is_the_declared_one(scripted_run):
    from agent.toolspec import DECLARATIONS

    events = read_trace(scripted_run[0].run_dir / "trace.jsonl")
    results = [e["payload"] for e in events if e["type"] == "tool_result" and "error" not in e["payload"]["result"]]
    assert {r["name"] for r in results} == {"segment", "inpaint", "finish"}
    for r in results:  # strict: a reply field the declaration lacks, or a wrong type, fails here
        reply = DECLARATIONS[r["name"]][1]
        assert reply.model_validate(r["result"], strict=True).dump() == r["result"]


def test_trace_and_state_hold_no_pixels(scripted_run):
    report, requests = scripted_run
    text = (report.run_dir / "trace.jsonl").read_text()
    assert "base64" not in text and "data:image" not in text
    types = {json.loads(line)["type"] for line in text.splitlines()}
    assert {"run_start", "llm_request", "llm_response", "tool_call", "tool_result", "artifact", "decision",
            "run_end"} <= types
    # images went over the wire as data URLs, only the latest few per request
    for r in requests:
        images = [p for m in r["messages"] if isinstance(m.get("content"), list) for p in m["content"]
                  if p.get("type") == "image_url"]
        assert 1 <= len(images) <= 3 and all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in images)
    # every artifact referenced exists
    for e in read_trace(report.run_dir / "trace.jsonl"):
        if e["type"] == "artifact":
            assert (report.run_dir / "artifacts" / f"{e['payload']['id']}.png").exists()


@pytest.mark.slow
def test_no_images_arrays_or_base64_in_graph_state_or_checkpoints(photo, tmp_path):
    saver = MemorySaver()
    with ScriptedServer(coffee_script()[:3] + coffee_script()[-1:]) as srv:
        run_peel(RunOptions(image=photo, out=tmp_path / "run", planner="vlm", vlm_url=srv.url, **fast()),
                 checkpointer=saver)
    checkpoints = list(saver.list(None))
    assert len(checkpoints) > 3
    for cp in checkpoints:
        values = cp.checkpoint["channel_values"]
        dumped = json.dumps(values)  # raises on arrays, tensors, bytes
        assert "base64" not in dumped and "data:image" not in dumped
        assert len(dumped) < 200_000


def test_a_model_that_never_finishes_is_stopped_by_the_step_budget(photo, tmp_path):
    with ScriptedServer(never_finishes()) as srv:
        report = run_peel(RunOptions(image=photo, out=tmp_path / "run", planner="vlm", vlm_url=srv.url,
                                     step_budget=5, **fast()))
        served = srv.served
    assert report.status == "step_budget" and served == 5
    m = json.loads((report.run_dir / "manifest.json").read_text())
    assert m["status"] == "step_budget" and "step budget" in m["reason"] and m["model_turns"] == 5
    assert (report.run_dir / "result.svg").exists() and m["result"]["layers"] >= 1
    assert read_trace(report.run_dir / "trace.jsonl")[-1]["type"] == "run_end"


def test_endpoint_down_with_planner_vlm_is_one_line_and_exit_2(photo, tmp_path, capsys):
    out = tmp_path / "run"
    code = main([str(photo), "--planner", "vlm", "--vlm-url", "http://127.0.0.1:9/v1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--planner vlm" in err and "Traceback" not in err
    assert not out.exists()


def test_planner_auto_falls_back_to_the_heuristic_and_says_so(photo, tmp_path, capsys):
    out = tmp_path / "run"
    code = main([str(photo), "--planner", "auto", "--vlm-url", "http://127.0.0.1:9/v1", "--out", str(out),
                 "--paths", "64", "--iters", "15", "--max-layers", "2", "--hint", "keep the shadow with the cup"])
    err = capsys.readouterr().err
    assert code == 0
    assert "using the built-in heuristic planner" in err
    m = json.loads((out / "manifest.json").read_text())
    assert m["planner"] == "heuristic"
    assert any("heuristic planner" in n for n in m["notes"])
    assert m["hints_not_honored"] == ["keep the shadow with the cup"]


@pytest.mark.slow
def test_replay_rerun_offline_reproduces_the_same_layers(scripted_run, tmp_path):
    report, _ = scripted_run  # its server is stopped: nothing answers any more
    events = show_run(report.run_dir, quiet=True)
    assert events[0]["type"] == "run_start"
    result = rerun_run(report.run_dir, tmp_path / "rerun", quiet=True)
    assert result.divergence is None, result.summary
    assert result.same_layers is True
    assert "matched the recording" in result.summary
    old = json.loads((report.run_dir / "manifest.json").read_text())["layers"]
    new = json.loads((result.report.run_dir / "manifest.json").read_text())["layers"]
    assert [e["layer_id"] for e in old] == [e["layer_id"] for e in new]


@pytest.mark.slow
def test_an_edited_prompt_is_reported_at_the_turn_where_it_first_matters(scripted_run, tmp_path, monkeypatch):
    report, _ = scripted_run
    real = prompts.template
    monkeypatch.setattr(prompts, "template", lambda name: real(name) + " Be brief." if name == "nudge" else real(name))
    result = rerun_run(report.run_dir, tmp_path / "rerun", quiet=True)
    # the nudge is first sent after turn 4's text-only answer, so turn 5 is the first to differ
    assert result.divergence is not None and result.divergence["turn"] == 5
    assert "diverged at model turn 5" in result.summary


def test_replay_command_shows_a_run(scripted_run, capsys):
    assert main(["replay", str(scripted_run[0].run_dir)]) == 0
    out = capsys.readouterr().out
    assert "segment" in out and "inpaint" in out and "finish" in out


def test_replay_of_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_bad_flag_values_are_one_line_and_exit_2(photo, capsys):
    for args in (["--max-layers", "0"], ["--planner", "gpt"], ["--paths", "2"], ["--device", "tpu"]):
        assert main([str(photo), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("amodal-agent: error:")
    assert main(["missing.png"]) == 2


@pytest.mark.slow
def test_heuristic_planner_peels_coffee_into_at_least_three_layers(tmp_path, capsys):
    """The fallback a fresh machine gets, on the 256 px coffee photo, through the command line. The
    peel does not depend on the path budget, so a small one keeps this a test (the joint pass still
    takes its 300 steps); bench/pipeline.py times the default settings."""
    photo = coffee_photo(tmp_path / "coffee.png", longest=256)
    code = main([str(photo), "--planner", "heuristic", "--out", str(tmp_path / "run"), "--paths", "48",
                 "--iters", "10"])
    err = capsys.readouterr().err
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert code == 0 and m["status"] == "finished"
    assert m["planner"] == "heuristic"
    assert m["result"]["layers"] >= 3
    assert "vectorize background" in err and "→ segment" in err  # live output: calls and optimizer progress


def test_object_layers_stay_inside_their_masks_after_joint_refinement(scripted_run):
    """The joint pass optimises the composite; the per-layer mask term must keep each object's paint
    on the object (a designer moving the cup must not carry a sliver of table)."""
    import numpy as np
    from PIL import Image
    from scipy.ndimage import binary_dilation

    from tools.svg import read_svg

    run_dir = scripted_run[0].run_dir
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["stack_refine"]["psnr_after"] >= m["stack_refine"]["psnr_before"]
    doc = read_svg(run_dir / "result.svg")
    for layer, entry in zip(doc.layers[1:], m["layers"][1:], strict=True):
        mask = np.asarray(Image.open(run_dir / entry["png"]))[..., 3] > 127
        alpha = layer.paths.render(doc.height, doc.width).image[..., 3].numpy()
        spill = float(alpha[~binary_dilation(mask, iterations=2)].sum())
        print(f"{entry['name']}: alpha outside its mask {spill:.2f} px of {mask.sum()} px")
        assert spill < 0.02 * mask.sum() + 1


def test_the_background_layer_stays_opaque_after_joint_refinement(scripted_run):
    """The joint pass must not let the background turn see-through where a white backdrop happens to
    match the photo: moving an object, or any other backdrop, would show it."""
    from tools.svg import read_svg

    doc = read_svg(scripted_run[0].run_dir / "result.svg")
    alpha = doc.layers[0].paths.render(doc.height, doc.width).image[..., 3]
    below = int((alpha < 0.99).sum())
    print(f"background alpha: min {float(alpha.min()):.4f}, {below} px below 0.99")
    assert float(alpha.min()) > 0.9 and below <= 0.002 * alpha.numel()


@pytest.mark.slow
def test_the_example_trace_in_traces_replays_out_of_the_box(tmp_path, capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "traces" / "coffee-scripted"
    assert main(["replay", str(example)]) == 0
    shown = capsys.readouterr().out
    assert "→ segment" in shown and "← inpaint" in shown
    result = rerun_run(example, tmp_path / "rerun", quiet=True)
    print(result.summary)
    assert result.divergence is None and result.same_layers is True


def test_the_recorded_example_is_current():
    """traces/coffee-scripted was recorded with today's prompts and tool schema (no rerun: hashes only)."""
    from pathlib import Path

    from agent.run import tool_set  # the tools as offered to the recorded run: their hash is what it recorded

    example = Path(__file__).resolve().parents[1] / "traces" / "coffee-scripted"
    m = json.loads((example / "manifest.json").read_text())
    options = RunOptions.recorded(Path(m["image"]), example, m["options"])
    now = {"prompt_hashes": prompts.hashes(), "tool_schema_hash": tool_set(options).hash()}
    stale = [k for k in now if m.get(k) != now[k]]
    if stale:
        pytest.fail(f"traces/coffee-scripted is stale ({', '.join(stale)} changed since it was recorded); "
                    "re-record it with: python traces/record.py", pytrace=False)


@pytest.mark.slow
def test_pad_canvas_grows_the_canvas_and_layers_keep_their_full_geometry(photo, tmp_path):
    from agent_script import last_result
    from PIL import Image
    from scripted_server import tool_calls_message

    from tools.svg import read_svg

    saucer_to_bottom = [110, 220, 810, 1000]  # the saucer is cut by the bottom edge of the frame
    script = [
        lambda b: tool_calls_message("segment", {"target": "saucer", "keywords": ["saucer"],
                                                 "bbox_2d": saucer_to_bottom}),
        lambda b: tool_calls_message("pad_canvas", {"mask_id": last_result(b)["mask_id"], "margin": 16}),
        lambda b: tool_calls_message("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "saucer"}),
        lambda b: tool_calls_message("finish", {"reason": "done"}),
    ]
    with ScriptedServer(script) as srv:
        report = run_peel(RunOptions(image=photo, out=tmp_path / "run", planner="vlm", vlm_url=srv.url, **fast()))
    assert report.status == "finished", report.reason
    m = report.manifest
    w, h = m["canvas"]["frame"]
    assert m["canvas"]["height"] == h + 16 and m["canvas"]["width"] == w and m["canvas"]["offset"] == [0, 0]
    for entry in m["layers"]:  # raster layers at the padded canvas's size
        assert Image.open(report.run_dir / entry["png"]).size == (w, h + 16)
    doc = read_svg(report.run_dir / "result.svg")
    assert (doc.width, doc.height) == (w, h)  # the viewBox stays the original frame
    saucer = doc.layers[1].paths
    assert float(saucer.points[:, 1].max()) > h + 2  # geometry beyond the frame is kept


def test_a_run_that_fails_midway_leaves_trace_manifest_and_finished_layers(photo, tmp_path, monkeypatch):
    from agent_script import last_result
    from scripted_server import tool_calls_message

    monkeypatch.setattr("agent.vlm.time.sleep", lambda s: None)  # no real backoff waits in the test
    script = [
        lambda b: tool_calls_message("segment", {"target": "cup", "keywords": ["cup"], "bbox_2d": [273, 29, 703, 643]}),
        lambda b: tool_calls_message("inpaint", {"mask_id": last_result(b)["mask_id"], "layer_name": "cup"}),
    ] + [{"http_status": 503}] * 10
    with ScriptedServer(script) as srv:
        report = run_peel(RunOptions(image=photo, out=tmp_path / "run", planner="vlm", vlm_url=srv.url, **fast()))
    assert report.status == "error" and "kept failing (HTTP 503): gave up after 5 attempts" in report.reason
    m = json.loads((report.run_dir / "manifest.json").read_text())
    assert m["status"] == "error" and m["reason"] == report.reason
    assert m["layers_so_far"] == ["layers/00-background.png", "layers/01-cup.png"]
    assert all((report.run_dir / p).exists() for p in m["layers_so_far"])
    events = read_trace(report.run_dir / "trace.jsonl")
    assert events[-1]["type"] == "run_end" and any(e["type"] == "error" for e in events)


def test_a_large_photo_is_worked_smaller_and_the_svg_keeps_its_size(tmp_path, capsys):
    """--size caps the working resolution (fitting cost grows with covered pixels); the paths are
    scaled back so result.svg has the photo's size and is measured against the photo itself."""
    import numpy as np
    from PIL import Image

    from tools.metrics import resvg_render
    from tools.svg import read_svg

    photo = coffee_photo(tmp_path / "coffee.png", longest=240)
    out = tmp_path / "run"
    code = main([str(photo), "--planner", "heuristic", "--out", str(out), "--size", "64", "--max-layers", "2",
                 "--paths", "48", "--iters", "20"])
    assert code == 0
    err = capsys.readouterr().err
    assert "working at 64x43 (the photo is 240x160" in " ".join(err.split())
    m = json.loads((out / "manifest.json").read_text())
    assert m["canvas"]["frame"] == [64, 43] and m["canvas"]["source"] == [240, 160]
    assert m["options"]["size"] == 64 and any("working at 64x43" in n for n in m["notes"])
    doc = read_svg(out / "result.svg")
    assert (doc.width, doc.height) == (240, 160)
    pts = doc.all_paths().points
    assert float(pts[:, 0].max()) > 200 and float(pts[:, 1].max()) > 130  # scaled back, not left at 64 px
    assert resvg_render((out / "result.svg").read_text())[..., 3].min() > 0.9  # covers the whole photo
    assert m["result"]["psnr"] > 18  # measured at 240x160 against the photo
    layer = Image.open(out / m["layers"][0]["png"])
    assert layer.size == (64, 43)
    assert np.asarray(layer)[..., 3].min() == 255


def test_bad_size_is_one_line_and_exit_2(tmp_path, capsys):
    photo = coffee_photo(tmp_path / "coffee.png")
    assert main([str(photo), "--planner", "heuristic", "--size", "8"]) == 2
    assert "--size must be 0 (full resolution) or at least 32" in capsys.readouterr().err


def test_inpaint_refuses_a_mask_that_is_only_the_fill_of_an_earlier_hole(photo, tmp_path):
    from agent_script import CUP, last_mask
    from scripted_server import tool_calls_message

    coffee_surface = [470, 160, 570, 310]  # inside the cup: after the cup is peeled, only its hole's fill is there
    script = [
        lambda b: tool_calls_message("segment", {"target": "cup", "keywords": ["cup"], "bbox_2d": CUP}),
        lambda b: tool_calls_message("inpaint", {"mask_id": last_mask(b), "layer_name": "cup"}),
        lambda b: tool_calls_message("segment", {"target": "coffee", "keywords": ["coffee"],
                                                 "bbox_2d": coffee_surface}),
        lambda b: tool_calls_message("inpaint", {"mask_id": last_mask(b), "layer_name": "coffee"}),
        lambda b: tool_calls_message("finish", {"reason": "done"}),
    ]
    with ScriptedServer(script) as srv:
        report = run_peel(RunOptions(image=photo, out=tmp_path / "run", planner="vlm", vlm_url=srv.url, **fast()))
        refused = json.loads([m for m in srv.requests[-1]["messages"] if m["role"] == "tool"][-1]["content"])
    assert report.status == "finished", report.reason
    assert "outside the layers already peeled" in refused["error"]
    assert [layer["name"] for layer in report.manifest["layers"][1:]] == ["cup"]  # no empty layer was made
