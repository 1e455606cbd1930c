"""Live output: the model's reasoning and calls, each tool's result, optimizer progress (rich).

It is fed by trace events, so what the user watches is exactly what the trace records; ``replay``
uses the same renderer over a saved trace.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LiveView:
    def __init__(self, quiet: bool = False, console: Console | None = None, reasoning_chars: int = 700):
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self.reasoning_chars = reasoning_chars

    def say(self, text: str, style: str = "") -> None:
        if not self.quiet:
            self.console.print(f"[{style}]{escape(text)}[/]" if style else escape(text))

    def event(self, e: dict) -> None:
        if self.quiet:
            return
        render_event(self.console, e, self.reasoning_chars)

    @contextmanager
    def optimizer(self, label: str, total: int):
        """A progress bar for one layer's fit; yields the callback the optimizer reports to."""
        if self.quiet or total == 0:
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn(f"  vectorize {escape(label)[:24]:<24}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("PSNR {task.fields[psnr]:5.2f} dB  paths {task.fields[paths]}"),
                       TimeElapsedColumn(), console=self.console)
        with bar:
            task = bar.add_task(label, total=total, psnr=0.0, paths=0)
            yield lambda p: bar.update(task, completed=p.step, psnr=p.psnr, paths=p.paths)


def render_event(console: Console, e: dict, reasoning_chars: int = 700) -> None:
    t, p = e["type"], e["payload"]
    if t == "run_start":
        console.print(f"[bold]amodal-agent[/] {escape(p.get('image', ''))} -> {escape(p.get('run_dir', ''))}  "
                      f"planner [cyan]{escape(p.get('planner', ''))}[/]")
        if fork := p.get("fork_of"):
            console.print(f"  forked from {escape(fork['run'])} before model turn {fork['turn']}")
        for h in p.get("hints", []):
            console.print(f"  hint: [italic]{escape(h)}[/]")
    elif t == "llm_request":
        console.print(f"[dim]model turn {p.get('turn', '?')}: {len(p['request']['messages'])} messages, "
                      f"{p.get('images', 0)} image(s)[/]")
    elif t == "llm_response":
        parsed = p.get("parsed", {})
        if parsed.get("reasoning"):
            console.print(f"  [dim italic]{escape(_clip(parsed['reasoning'], reasoning_chars))}[/]")
        if parsed.get("text"):
            console.print(f"  {escape(_clip(parsed['text'], reasoning_chars))}")
        for c in parsed.get("calls", []):
            args = json.dumps(c.get("arguments"), ensure_ascii=False) if c.get("arguments") is not None else c["raw"]
            console.print(f"  [bold cyan]→ {escape(c['name'])}[/]({escape(_clip(args, 300))})")
        if parsed.get("quirks"):
            console.print(f"  [dim]parsed: {', '.join(parsed['quirks'])}[/]")
    elif t == "tool_result":
        res = p.get("result", {})
        style = "red" if "error" in res else "green"
        console.print(f"  [{style}]← {escape(p.get('name', ''))}: {escape(_clip(json.dumps(res), 300))}[/]")
    elif t == "decision":
        text = p.get("note") or p.get("text") or json.dumps(p)
        console.print(f"  [yellow]{escape(text)}[/]")
    elif t == "error":
        console.print(f"  [bold red]error: {escape(p.get('message', ''))}[/]")
    elif t == "run_end":
        console.print(f"[bold]done[/]: {escape(p.get('status', ''))} ({escape(p.get('reason', ''))})")
