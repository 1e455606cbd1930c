"""result.html: the story it tells, what it may load, and how it behaves in a real browser.

The browser tests drive Debian's Chromium through its ChromeDriver (selenium, no browser download),
offline, from ``file://``; each screenshot of the page's SVG is compared with resvg's render of the
same layer state.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import chromium, layer_order, missing, open_result, panel_item, resvg_state, screenshot

from agent.cli import main
from agent.trace import read_trace
from agent.viewer import build_page, build_story
from tools.image import psnr
from tools.metrics import resvg_render
from tools.svg import SvgDocument, read_svg, to_svg_string

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "coffee-scripted"
ZOOM = 4  # the example is 128x85: the browser draws it 4x larger, at whole pixels


@pytest.fixture
def run_dir(tmp_path) -> Path:
    out = tmp_path / "coffee"
    shutil.copytree(EXAMPLE, out)
    (out / "result.html").unlink(missing_ok=True)
    return out


def _turns(run: Path) -> list[int]:
    return [e["payload"]["turn"] for e in read_trace(run / "trace.jsonl") if e["type"] == "llm_response"]


def _page_data(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(blob)


def test_story_has_every_turn_with_what_the_model_saw_and_called(run_dir):
    story = build_story(read_trace(run_dir / "trace.jsonl"), run_dir)
    assert [t["turn"] for t in story["turns"]] == _turns(run_dir)
    first = story["turns"][0]
    assert first["seen"][0]["images"][0]["kind"] == "input"
    assert "espresso cup" in first["reasoning"]
    call = next(c for c in first["log"] if c["type"] == "call")
    assert call["name"] == "segment" and call["result"]["backend"] == "grabcut"
    images = [i for t in story["turns"] for m in t["seen"] for i in m["images"]]
    assert images and all((run_dir / i["src"]).exists() and not i["missing"] for i in images)
    failed = [c for t in story["turns"] for c in t["log"] if c["type"] == "call" and "error" in (c["result"] or {})]
    assert failed, "the example has a call the tools refused; the page must show it"
    assert story["system"].startswith("You are the planner")
    assert story["end"]["status"] == "finished"
    assert any("joint refinement" in entry["text"] for entry in story["after"])


def test_page_is_self_contained_and_small(run_dir):
    html = build_page(run_dir)
    assert len(html.encode()) < 300_000
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), "the page must load nothing remote"
    assert "<link" not in html and "@import" not in html and "url(" not in html
    svg = read_svg(run_dir / "result.svg")
    assert html.count('inkscape:groupmode="layer"') == len(svg.layers)
    data = _page_data(html)
    assert set(data["layers"]) == {layer.id for layer in svg.layers}
    assert data["summary"]["backends"]["inpaint"] == ["patchmatch"]


def test_run_text_cannot_break_out_of_the_page(run_dir):
    """A model's words are data: a reasoning that holds markup stays text inside the JSON blob."""
    trace = run_dir / "trace.jsonl"
    lines = trace.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    hostile = "</script><script>alert(1)</script><!-- <img src=x onerror=alert(2)>"
    for e in events:
        if e["type"] == "llm_response":
            e["payload"]["parsed"]["reasoning"] = hostile
            break
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    html = build_page(run_dir)
    assert html.count("<script") == 2 and "alert(" not in html.split('id="run-data">')[0]
    assert hostile not in html
    assert _page_data(html)["story"]["turns"][0]["reasoning"] == hostile


def test_page_of_a_failed_run_without_svg(run_dir):
    (run_dir / "result.svg").unlink()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.update(status="error", reason="RuntimeError: boom", layers=[], layers_so_far=["layers/00-background.png"])
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    data = _page_data(build_page(run_dir))
    assert data["summary"]["status"] == "error" and data["layers_so_far"] == ["layers/00-background.png"]
    assert len(data["story"]["turns"]) == len(_turns(run_dir))


def test_view_command(run_dir, tmp_path, capsys):
    assert main(["view", str(run_dir)]) == 0
    page = run_dir / "result.html"
    assert capsys.readouterr().out.strip() == str(page) and page.stat().st_size > 10_000
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["view", str(empty)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "missing")]) == 2


# ------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser():
    if (why := missing()) is not None:
        pytest.skip(why)
    with chromium() as driver:
        yield driver


def test_browser_hide_and_show_a_layer_matches_resvg(browser, run_dir):
    from selenium.webdriver.common.by import By

    svg, doc = open_result(browser, run_dir, ZOOM)
    ids = [layer.id for layer in doc.layers]
    full = screenshot(svg)
    assert full.shape[:2] == (doc.height * ZOOM, doc.width * ZOOM)
    assert psnr(full, resvg_state(doc, ids, ZOOM)) >= 30

    panel_item(browser, "layer-03-cup").find_element(By.CSS_SELECTOR, 'input[data-action="visible"]').click()
    hidden = screenshot(svg)
    without_cup = resvg_state(doc, [i for i in ids if i != "layer-03-cup"], ZOOM)
    assert psnr(hidden, without_cup) >= 30
    assert psnr(hidden, resvg_state(doc, ids, ZOOM)) < psnr(hidden, without_cup) - 5, "the cup must really be gone"

    panel_item(browser, "layer-03-cup").find_element(By.CSS_SELECTOR, 'input[data-action="visible"]').click()
    shown = screenshot(svg)
    assert psnr(shown, resvg_state(doc, ids, ZOOM)) >= 30

    items = browser.find_elements(By.CSS_SELECTOR, "#layer-list li")
    assert [li.get_attribute("data-id") for li in items] == ids[::-1], "front on top"
    assert [li.find_element(By.CSS_SELECTOR, ".name").text.split("\n")[0] for li in items] == \
        [layer.label for layer in doc.layers][::-1]

    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(url.startswith("file://") for url in loaded), loaded


def test_browser_restack_solo_and_select(browser, run_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    svg, doc = open_result(browser, run_dir, ZOOM)
    ids = [layer.id for layer in doc.layers]
    panel_item(browser, "layer-03-cup").find_element(By.CSS_SELECTOR, 'button[data-action="down"]').click()
    assert layer_order(browser) == ["layer-00-background", "layer-01-saucer", "layer-03-cup", "layer-02-spoon"]
    panel_item(browser, "layer-03-cup").find_element(By.CSS_SELECTOR, 'button[data-action="up"]').click()
    assert layer_order(browser) == ids

    panel_item(browser, "layer-01-saucer").find_element(By.CSS_SELECTOR, 'button[data-action="solo"]').click()
    assert psnr(screenshot(svg), resvg_state(doc, ["layer-01-saucer"], ZOOM)) >= 30
    panel_item(browser, "layer-01-saucer").find_element(By.CSS_SELECTOR, 'button[data-action="solo"]').click()
    assert psnr(screenshot(svg), resvg_state(doc, ids, ZOOM)) >= 30

    # a click on the cup's pixels selects the cup's layer: the point where the cup alone is most opaque
    cup = resvg_render(to_svg_string(SvgDocument(doc.width, doc.height, [doc.layers[3]])), doc.width, doc.height)
    y, x = np.unravel_index(np.argmax(cup[..., 3] * (cup[..., 3] > 0.99)), cup.shape[:2])
    w, h = doc.width * ZOOM, doc.height * ZOOM
    ActionChains(browser).move_to_element_with_offset(
        svg, int((x + 0.5) * ZOOM - w / 2), int((y + 0.5) * ZOOM - h / 2)).click().perform()
    selected = browser.find_elements(By.CSS_SELECTOR, "#layer-list li.selected")
    assert [li.get_attribute("data-id") for li in selected] == ["layer-03-cup"]


def test_browser_trace_panel_lists_every_model_turn(browser, run_dir):
    from selenium.webdriver.common.by import By

    open_result(browser, run_dir, ZOOM)
    turns = browser.find_elements(By.CSS_SELECTOR, "#turns .turn")
    assert [int(t.get_attribute("data-turn")) for t in turns] == _turns(run_dir)
    calls = {e["payload"]["id"]: e["payload"]["name"] for e in read_trace(run_dir / "trace.jsonl")
             if e["type"] == "tool_call"}
    shown = [c.text.split("(")[0] for c in browser.find_elements(By.CSS_SELECTOR, "#turns .call > code")]
    assert shown == list(calls.values())
    images = browser.execute_script(
        "return [...document.querySelectorAll('#turns img')].map(i => [i.complete, i.naturalWidth])")
    assert images and all(done and width > 0 for done, width in images), "every image the model saw is shown"
