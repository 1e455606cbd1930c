"""Record the example run in ``traces/``: the scripted Qwen3-VL peel of the coffee photo.

    python traces/record.py            # writes traces/coffee-scripted/

The run is served by the same scripted OpenAI-compatible server the tests use (``tests/agent_script.py``,
``tests/scripted_server.py``), through the real ``openai`` client, so the trace has exactly the shape of
a run against vLLM. ``amodal-agent replay traces/coffee-scripted`` shows it; ``--rerun`` re-executes it
offline. Re-record whenever a prompt or the tool schema changes (``test_the_recorded_example_is_current``
says when).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from agent_script import coffee_photo, coffee_script  # noqa: E402
from scripted_server import ScriptedServer  # noqa: E402

from agent.context import RunOptions  # noqa: E402
from agent.run import run_peel  # noqa: E402
from tools.vectorize.options import VectorizeOptions  # noqa: E402


def main() -> None:
    dest = HERE / "coffee-scripted"
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp, ScriptedServer(coffee_script()) as srv:
        photo = coffee_photo(Path(tmp) / "coffee.png", longest=128)
        report = run_peel(RunOptions(image=photo, out=dest, planner="vlm", vlm_url=srv.url,
                                     hints=["keep the spoon separate from the saucer"],
                                     vectorize=VectorizeOptions(paths=192, iters=150, device="cpu")))
    print(f"{report.run_dir}: {report.status} ({report.reason})")


if __name__ == "__main__":
    main()
