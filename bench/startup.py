"""How long `python app.py` takes to serve its page, next to the floor of importing Gradio alone.

Each round starts, in alternating order, (a) `python app.py` on a fresh workspace, timed until GET / answers 200,
and (b) `python -c "import gradio"`, the part no change of ours can remove. Printed per round and as medians: the
seconds to the page (target: under 5 s on a quiet 2-core machine), the floor, and their ratio. torch, diffusers and
transformers are imported when first used (a run, a preview, a generation), not before the page is served.

    python bench/startup.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_page() -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as workspace:
        start = time.perf_counter()
        app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--workspace", workspace], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                if app.poll() is not None:
                    raise SystemExit(f"app.py exited with {app.returncode} before serving its page")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                        if answer.status == 200:
                            return time.perf_counter() - start
                except OSError:
                    time.sleep(0.05)
        finally:
            app.terminate()
            app.wait()


def time_to_import_gradio() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], cwd=ROOT, check=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    pages, floors = [], []
    for i in range(args.rounds):
        pair = [time_to_page, time_to_import_gradio][:: 1 if i % 2 == 0 else -1]
        for measure in pair:
            (pages if measure is time_to_page else floors).append(measure())
        print(f"round {i + 1}: page served after {pages[-1]:.2f} s; import gradio {floors[-1]:.2f} s")
    page, floor = statistics.median(pages), statistics.median(floors)
    print(f"median: page served after {page:.2f} s (target < 5 s on a quiet machine); import gradio alone {floor:.2f} s; "
          f"ratio {page / floor:.2f}")


if __name__ == "__main__":
    main()
