"""`amodal-agent batch` on a local Ray instance (2 CPUs) started by the tests: finished folders, a failed
row for a corrupt photo, a correct CSV, resuming by skipping, a killed worker retried, Ctrl-C."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="batch needs Ray: pip install 'amodal-agent[batch]'")

from agent.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--planner", "heuristic", "--paths", "24", "--iters", "8", "--max-layers", "2", "--quiet"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _photos(folder: Path, n: int = 4, corrupt: bool = True) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.zeros((48, 64, 3), np.uint8)
        a[:] = rng.integers(0, 255, 3)
        x = int(rng.integers(5, 30))
        a[10:35, x:x + 25] = rng.integers(0, 255, 3)
        Image.fromarray(a).save(folder / f"p{i}.png")
    if corrupt:
        (folder / "broken.png").write_bytes(b"not a png at all")
    return folder


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "batch.csv", newline="") as fh:
        return {Path(r["image"]).name: r for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_batch_runs_skips_on_rerun_and_records_failures(local_ray, tmp_path, capsys):
    photos, out = _photos(tmp_path / "in"), tmp_path / "out"
    assert main(["batch", str(photos), "--out", str(out), *RUN]) == 1  # one photo failed
    rows = _rows(out)
    assert sorted(rows) == ["broken.png", "p0.png", "p1.png", "p2.png", "p3.png"]
    for name in ("p0", "p1", "p2", "p3"):
        m = json.loads((out / name / "manifest.json").read_text())
        assert m["status"] == "finished" and rows[f"{name}.png"]["status"] == "finished"
        assert float(rows[f"{name}.png"]["psnr"]) == m["result"]["psnr"] and int(rows[f"{name}.png"]["layers"]) >= 1
    broken = rows["broken.png"]
    assert broken["status"] == "failed" and "not an image format Pillow can read" in broken["reason"]
    assert "\n" not in broken["reason"]
    assert json.loads((out / "batch.json").read_text())[0]["image"].endswith("broken.png")
    before = {n: (out / n / "manifest.json").stat().st_mtime for n in ("p0", "p1", "p2", "p3")}
    capsys.readouterr()

    assert main(["batch", str(photos), "--out", str(out), *RUN[:-1]]) == 1
    assert "4 finished before (skipped), 1 to run" in capsys.readouterr().err
    assert {n: (out / n / "manifest.json").stat().st_mtime for n in before} == before, "finished runs untouched"
    assert [r["skipped"] for n, r in sorted(_rows(out).items()) if n != "broken.png"] == ["True"] * 4


def _kill_first_worker(killed: list[int], stop: threading.Event) -> None:
    import psutil

    while not stop.is_set() and not killed:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if any("ray::run_one" in part for part in (proc.info["cmdline"] or [])):
                time.sleep(1.0)  # inside the image
                proc.kill()
                killed.append(proc.info["pid"])
                return
        time.sleep(0.1)


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_photo_finishes(local_ray, tmp_path):
    photos, out = _photos(tmp_path / "in", n=2, corrupt=False), tmp_path / "out"
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_first_worker, args=(killed, stop), daemon=True)
    killer.start()
    code = main(["batch", str(photos), "--out", str(out), "--retries", "2", *RUN])
    stop.set()
    assert killed, "no worker was killed"
    assert code == 0
    assert [r["status"] for r in _rows(out).values()] == ["finished", "finished"]


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_says_what_is_left(tmp_path):
    photos, out = _photos(tmp_path / "in", n=4, corrupt=False), tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "batch", str(photos), "--out", str(out),
                             "--workers", "1", *RUN[:-1]], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not list(out.glob("*/manifest.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "photos left; run the same command again to go on" in err
    rows = _rows(out)
    done = [n for n, r in rows.items() if r["status"] == "finished"]
    assert done and len(done) < 4 and all(r["status"] in ("finished", "not run") for r in rows.values())
    for name in done:
        assert json.loads((out / Path(name).stem / "manifest.json").read_text())["status"] == "finished"
