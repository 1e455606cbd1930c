"""``result.html``: one self-contained page per run folder, for the designer and for the debugger.

The page inlines the layered SVG (so the browser draws exactly the file the user gets), the run's
story (each model turn: what it saw, what it thought, what it called and what came back) and the
manifest's summary, and refers to the images the model saw by relative paths into ``artifacts/``,
so the folder can be zipped and opened anywhere from ``file://`` with no network.

The story is distilled here from the trace, not shipped whole: every request repeats the system
prompt and the message history, and the page only needs what is new at each turn. The HTML, CSS and
JavaScript are plain files in ``viewer_page/``, inlined as they are.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from tools.atomic import write_text_atomic
from tools.svg import read_svg, to_svg_string

from .artifacts import PREFIX
from .trace import read_trace

PAGE = "result.html"
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def _asset(name: str) -> str:
    return resources.files("agent").joinpath("viewer_page", name).read_text(encoding="utf-8")


def _text_and_images(content, run_dir: Path, kinds: dict[str, str]) -> tuple[str, list[dict]]:
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for part in content or []:
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith(PREFIX):
                aid = url.removeprefix(PREFIX)
                src = f"artifacts/{aid}.png"
                images.append({"src": src, "kind": kinds.get(aid, "image"), "missing": not (run_dir / src).exists()})
            else:  # an inline data URL (not written by us, but a trace may hold one): say so, do not embed it
                images.append({"src": "", "kind": "inline image", "missing": True})
    return "\n".join(texts), images


def _new_messages(messages: list[dict]) -> list[dict]:
    """What the model is shown for the first time at this turn: the user messages after its last answer."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return [m for m in messages[last + 1 :] if m.get("role") == "user"]


def _note(payload: dict) -> str:
    return payload.get("note") or payload.get("text") or payload.get("message") or json.dumps(payload)


def build_story(events: list[dict], run_dir: Path) -> dict:
    """The trace as the page tells it: what came before the first turn, the turns, and the ending."""
    kinds = {e["payload"]["id"]: e["payload"].get("kind", "image") for e in events if e["type"] == "artifact"}
    story: dict = {"system": "", "before": [], "turns": [], "after": [], "end": None}
    turn: dict | None = None
    for e in events:
        t, p = e["type"], e["payload"]
        if t == "llm_request":
            messages = p["request"]["messages"]
            if not story["system"]:
                story["system"] = next((m["content"] for m in messages if m.get("role") == "system"
                                        and isinstance(m.get("content"), str)), "")
            seen = [dict(zip(("text", "images"), _text_and_images(m.get("content"), run_dir, kinds), strict=True))
                    for m in _new_messages(messages)]
            turn = {"turn": p["turn"], "seen": seen, "images_in_request": p.get("images", 0),
                    "messages_in_request": len(messages), "log": []}
            story["turns"].append(turn)
        elif t == "llm_response" and turn is not None:
            parsed, message = p.get("parsed") or {}, p.get("message") or {}
            turn.update(reasoning=parsed.get("reasoning") or message.get("reasoning_content") or "",
                        text=parsed.get("text") or "", quirks=parsed.get("quirks") or [],
                        latency_s=p.get("latency_s"), attempts=p.get("attempts"))
        elif t == "tool_call" and turn is not None:
            turn["log"].append({"type": "call", "id": p.get("id"), "name": p.get("name"),
                                "arguments": p.get("arguments"), "result": None})
        elif t == "tool_result" and turn is not None:
            call = next((c for c in reversed(turn["log"]) if c["type"] == "call" and c["id"] == p.get("id")), None)
            if call is None:
                turn["log"].append({"type": "call", "id": p.get("id"), "name": p.get("name"), "arguments": None,
                                    "result": p.get("result")})
            else:
                call["result"] = p.get("result")
        elif t in ("decision", "error"):
            entry = {"type": "error" if t == "error" else "note", "text": _note(p)}
            after = turn is None or e["node"] in ("finalize", "run")
            (story["before"] if turn is None else story["after"] if after else turn["log"]).append(entry)
        elif t == "run_end":
            story["end"] = p
    return story


def _summary(manifest: dict) -> dict:
    keys = ("status", "reason", "image", "planner", "model", "endpoint", "hints", "hints_not_honored", "backends",
            "notes", "model_turns", "canvas", "timings_s", "result", "stack_refine", "seeds", "fork_of", "resumes",
            "exports")
    out = {k: manifest[k] for k in keys if k in manifest}
    versions = manifest.get("versions") or {}
    out["versions"] = {k: versions[k] for k in ("amodal-agent", "torch", "python") if versions.get(k)}
    return out


def _script_json(obj) -> str:
    """JSON safe inside <script>: no '</' can close the element, no '<!--' can open a comment."""
    return json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c")


def build_page(run_dir: str | Path) -> str:
    run_dir = Path(run_dir)
    manifest_path, trace_path, svg_path = (run_dir / n for n in ("manifest.json", "trace.jsonl", "result.svg"))
    if not manifest_path.exists() and not trace_path.exists():
        raise ValueError(f"{run_dir}: not a run folder (no manifest.json or trace.jsonl)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    events = read_trace(trace_path) if trace_path.exists() else []
    # the SVG goes through our reader and writer: the page shows what resvg and editors read, and
    # nothing but paths (no script, no foreign markup) can reach the page from an edited file
    svg = to_svg_string(read_svg(svg_path)).split("\n", 1)[1] if svg_path.exists() else ""
    layers = {e["id"]: {k: e.get(k) for k in ("paths", "psnr", "inpaint", "png")} for e in manifest.get("layers", [])}
    data = {"title": Path(str(manifest.get("image") or run_dir.name)).name, "run_dir": run_dir.name,
            "summary": _summary(manifest), "layers": layers, "story": build_story(events, run_dir),
            "layers_so_far": manifest.get("layers_so_far", [])}
    slots = {"title": data["title"].replace("&", "&amp;").replace("<", "&lt;"), "style": _asset("viewer.css"),
             "svg": svg, "data": _script_json(data), "script": _asset("viewer.js")}
    return _SLOT.sub(lambda m: slots[m.group(1)], _asset("page.html"))


def write_page(run_dir: str | Path) -> Path:
    """Write (or rewrite) ``RUN_DIR/result.html``; ValueError when RUN_DIR is not a run folder."""
    return write_text_atomic(Path(run_dir) / PAGE, build_page(run_dir))
