"""Whether polling the app slows training, and how fast the read endpoints answer meanwhile.

The default digits config trains for `--seconds` through the app's API, once unpolled and once while `--clients`
clients each call /list_runs and /run_metrics (incrementally, since the last step they have) every `--every`
seconds, as browser tabs and monitoring scripts do. Printed: the run's images/s polled / unpolled (target >= 0.9)
and the p95 latency of each endpoint under that load (target < 300 ms on 2 cores). Rounds alternate the order and
the best of each is kept: on a shared machine other load only ever slows a run down, and it comes and goes.

    python bench/ui_overhead.py [--seconds 60] [--clients 20] [--every 0.5] [--rounds 2]

Clients POST to /gradio_api/run/<endpoint> (the read endpoints skip Gradio's queue); gradio_client's
queue-and-stream protocol costs the app more per call.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipelines.store import RunStore  # noqa: E402


def config_text(seconds: float) -> str:
    raw = yaml.safe_load((ROOT / "configs" / "ddpm_digits16.yaml").read_text())
    raw["training"]["max_minutes"] = seconds / 60
    raw["training"]["log_every_steps"] = 5
    raw.setdefault("evaluation", {})["every_epochs"] = 0  # images/s of training steps only
    return yaml.safe_dump(raw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    def __init__(self, workspace: Path, *flags: str):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", self.url.rsplit(":", 1)[1], "--workspace",
                                      str(workspace), *flags], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
        self.store = RunStore(workspace)
        while True:
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)

    def call(self, client: http.client.HTTPConnection, endpoint: str, *data):
        client.request("POST", f"/gradio_api/run/{endpoint}", json.dumps({"data": list(data)}),
                       {"Content-Type": "application/json"})
        response = client.getresponse()
        body = response.read()
        assert response.status == 200, body
        return json.loads(body)["data"][0]

    def client(self) -> http.client.HTTPConnection:
        """A kept-alive connection (the standard library's client: a light script)."""
        return http.client.HTTPConnection(self.url.removeprefix("http://"), timeout=30)

    def train(self, config: str, clients: int, every: float, latencies: dict[str, list[float]]) -> float:
        """Images/s of one run, with `clients` pollers meanwhile (0: none)."""
        name = self.call(self.client(), "start", config)["name"]
        done = threading.Event()
        pollers = [threading.Thread(target=self.poll, args=(name, every, done, latencies)) for _ in range(clients)]
        for p in pollers:
            p.start()
        while self.store.get_run(name)["status"] in ("queued", "running"):
            time.sleep(1.0)
        done.set()
        for p in pollers:
            p.join()
        row = self.store.get_run(name)
        assert row["status"] == "completed", row["error"]
        rates = [r["value"] for r in self.store.metrics(name, ["images_per_s"])][1:]  # the first includes warm-up
        assert rates, f"{name} logged too few steps in its time: train longer (--seconds)"
        return statistics.mean(rates)

    def poll(self, name: str, every: float, done: threading.Event, latencies: dict[str, list[float]]) -> None:
        since, client = -1, self.client()
        while not done.wait(every):
            t0 = time.perf_counter()
            self.call(client, "list_runs")
            t1 = time.perf_counter()
            series = self.call(client, "run_metrics", name, since)
            t2 = time.perf_counter()
            since = max([since, *(s[-1][0] for s in series.values() if s)])
            latencies["list_runs"].append(t1 - t0)
            latencies["run_metrics"].append(t2 - t1)
        client.close()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def others() -> str:
    """What else used the CPU (other workers share this machine)."""
    me = {os.getpid()}
    out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()[1:]]
    busy = [r for r in rows if float(r[2]) >= 5 and int(r[0]) not in me and int(r[1]) not in me]
    return "; ".join(f"{r[3][:70]} ({r[2]}% CPU)" for r in busy[:5]) or "nothing else busy"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="training time of each run")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between one client's polls")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads-per-run", type=int, help="the app's flag (default: its own, the cores per run)")
    args = parser.parse_args()
    latencies: dict[str, list[float]] = {"list_runs": [], "run_metrics": []}
    quiet, polled = [], []
    config = config_text(args.seconds)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; busy: {others()}")
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--threads-per-run", str(args.threads_per_run)] if args.threads_per_run else []
        app = App(Path(tmp) / "ws", *flags)
        try:
            for i in range(args.rounds):
                for clients in ((0, args.clients) if i % 2 == 0 else (args.clients, 0)):
                    rate = app.train(config, clients, args.every, latencies)
                    (polled if clients else quiet).append(rate)
                    print(f"round {i + 1}: {rate:.0f} images/s with {clients} clients polling", flush=True)
        finally:
            app.close()
    print(f"images/s unpolled {max(quiet):.0f}, polled by {args.clients} clients every {args.every:g} s "
          f"{max(polled):.0f}: ratio {max(polled) / max(quiet):.3f} (target >= 0.9)")
    for endpoint, values in latencies.items():
        p95 = statistics.quantiles(values, n=20)[-1] * 1000
        print(f"{endpoint}: p95 {p95:.0f} ms, median {statistics.median(values) * 1000:.0f} ms over {len(values)} calls "
              "(target p95 < 300 ms)")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; busy: {others()}")


if __name__ == "__main__":
    main()
