"""Whether polling the app slows training, and how fast the read endpoints answer meanwhile.

The default digits config trains for `--seconds` through the app's API, once unpolled and, for each path, once
while `--clients` clients each call /list_runs and /run_metrics (incrementally, since the last step they have) every
`--every` seconds, as browser tabs and monitoring scripts do. The paths:
  run    a plain POST to /gradio_api/run/<endpoint> (one request; a light script)
  call   Gradio's queue with a light client: POST /gradio_api/call/<endpoint>, then GET its event's stream (the app's
         side of the queue path, which the page's own client takes too, without gradio_client's cost). Each client
         sends a session hash of its own, as gradio_client and the page do: a call without one makes Gradio build a
         whole session for it (the state of every component of the page), which cost the app 80 ms of CPU per call
         here (--call-without-session measures that)
  queue  gradio_client's Client.predict (POST /gradio_api/queue/join, then the answer on a server-sent-event stream:
         what the Python client and the page itself use)
Printed: the run's images/s polled / unpolled per path (target >= 0.9) and the p95 latency of each endpoint per path
under that load (target < 300 ms on 2 cores), with the load average of each phase. Rounds rotate the order and the
best rate of each phase is kept: on a shared machine other load only ever slows a run down, and it comes and goes.

    python bench/ui_overhead.py [--seconds 60] [--clients 20] [--every 0.5] [--rounds 2] [--paths run,call,queue]
                                [--root CHECKOUT]   (the app of another checkout: before/after a change)

Each gradio_client poller is a process of its own (as scripts and browsers are): gradio_client costs tens of ms of
CPU per call on the client's side (a new HTTP client per request), and twenty of them in one process would queue on
its interpreter lock and time that instead of the app. The CPU seconds the app (without its runs) and the pollers
used in each phase are printed too: on a 2-core machine both take from training.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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
    def __init__(self, workspace: Path, root: Path, *flags: str):
        self.store = RunStore(workspace)
        for _ in range(5):  # on a busy machine Gradio's start-up check of its own URL can fail (issue 24, item 16)
            self.url = f"http://127.0.0.1:{free_port()}"
            self.proc = subprocess.Popen([sys.executable, "app.py", "--port", self.url.rsplit(":", 1)[1], "--workspace",
                                          str(workspace), *flags], cwd=root, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
            while self.proc.poll() is None:
                try:
                    if httpx.get(self.url, timeout=2).status_code == 200:
                        # the page answers during Gradio's check too, which may still fail: past it (5 tries of
                        # 3.5 s at most), the app stays
                        time.sleep(20)
                        if self.proc.poll() is None:
                            return
                except httpx.HTTPError:
                    time.sleep(0.5)
            print(f"the app exited at start-up (code {self.proc.returncode}): starting it again", flush=True)
        raise RuntimeError("the app did not start in 5 tries")

    def call(self, client: http.client.HTTPConnection, endpoint: str, *data):
        client.request("POST", f"/gradio_api/run/{endpoint}", json.dumps({"data": list(data)}),
                       {"Content-Type": "application/json"})
        response = client.getresponse()
        body = response.read()
        assert response.status == 200, body
        return json.loads(body)["data"][0]

    def call_queued(self, client: http.client.HTTPConnection, endpoint: str, *data, session: str | None = None):
        """Through the queue: join it, then read the event's server-sent events up to "complete"."""
        body = {"data": list(data), **({"session_hash": session} if session else {})}
        client.request("POST", f"/gradio_api/call/{endpoint}", json.dumps(body), {"Content-Type": "application/json"})
        response = client.getresponse()
        body = response.read()
        assert response.status == 200, body
        client.request("GET", f"/gradio_api/call/{endpoint}/{json.loads(body)['event_id']}")
        response = client.getresponse()
        event, answer = None, None
        for line in iter(response.readline, b""):
            line = line.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                answer = json.loads(line.split(":", 1)[1])
                assert event == "complete", answer
        response.read()
        return answer[0]

    def client(self) -> http.client.HTTPConnection:
        """A kept-alive connection (the standard library's client: a light script)."""
        return http.client.HTTPConnection(self.url.removeprefix("http://"), timeout=30)

    def cpu_seconds(self) -> float:
        """CPU time of the app's own process (its runs are processes of their own, not counted)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(self, config: str) -> tuple[str, callable]:
        """Start a run; returns its name and a function that waits for its end and returns its images/s."""
        name = self.call(self.client(), "start", config)["name"]

        def finish() -> float:
            while self.store.get_run(name)["status"] in ("queued", "running"):
                time.sleep(1.0)
            row = self.store.get_run(name)
            assert row["status"] == "completed", row["error"]
            rates = [r["value"] for r in self.store.metrics(name, ["images_per_s"])][1:]  # the first includes warm-up
            assert rates, f"{name} logged too few steps in its time: train longer (--seconds)"
            return statistics.mean(rates)
        return name, finish

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def poll(call, name: str, every: float, done, latencies: dict[str, list[float]]) -> None:
    """Poll as a monitoring page does: the list of runs, then the run's metrics since the last step seen."""
    since = -1
    while not done.wait(every):
        t0 = time.perf_counter()
        call("list_runs")
        t1 = time.perf_counter()
        series = call("run_metrics", name, since)
        t2 = time.perf_counter()
        since = max([since, *(s[-1][0] for s in series.values() if s)])
        latencies["list_runs"].append(t1 - t0)
        latencies["run_metrics"].append(t2 - t1)


def gradio_client_poller(url: str, every: float, names, done, results) -> None:
    """A process with one gradio_client Client, made before the runs; polls one run per name it is given."""
    from gradio_client import Client

    try:
        # a generous timeout: on a busy machine the app takes seconds to send the page's config to a new Client
        client = Client(url, verbose=False, httpx_kwargs={"timeout": 120})
    except Exception as exc:  # noqa: BLE001 - said to the parent, which would otherwise wait for ever
        results.put(f"gradio_client could not connect: {exc!r}")
        return
    results.put(None)  # ready
    while (name := names.get()) is not None:
        latencies, cpu = {"list_runs": [], "run_metrics": []}, time.process_time()
        poll(lambda endpoint, *data: client.predict(*data, api_name=f"/{endpoint}"), name, every, done, latencies)
        results.put((latencies, time.process_time() - cpu))
    client.close()


class Pollers:
    """`n` clients of one path: "run" or "call" (threads here, each with a kept-alive connection), "queue" (processes, each
    with a gradio_client Client) or "none"."""

    def __init__(self, app: App, path: str, n: int, every: float, without_session: bool = False):
        self.app, self.path, self.n, self.every = app, path, n if path != "none" else 0, every
        self.without_session = without_session
        self.ctx = multiprocessing.get_context("fork")
        self.done = self.ctx.Event()
        if path == "queue":
            self.names, self.results = self.ctx.Queue(), self.ctx.Queue()
            self.procs = [self.ctx.Process(target=gradio_client_poller, args=(app.url, every, self.names, self.done,
                                                                               self.results), daemon=True) for _ in range(n)]
            for p in self.procs:  # one after another: twenty Clients fetching the page's config at once time out
                p.start()
                failed = self.results.get()
                assert failed is None, failed

    def start(self, name: str) -> None:
        self.done.clear()
        self.latencies = {"list_runs": [], "run_metrics": []}
        self.cpu = time.process_time()
        if self.path == "queue":
            for _ in self.procs:
                self.names.put(name)
        else:
            self.threads = [threading.Thread(target=poll, args=(self.plain_caller(), name, self.every, self.done,
                                                                self.latencies)) for _ in range(self.n)]
            for t in self.threads:
                t.start()

    def plain_caller(self):
        connection = self.app.client()
        if self.path == "call":
            session = None if self.without_session else uuid.uuid4().hex
            return lambda endpoint, *data: self.app.call_queued(connection, endpoint, *data, session=session)
        return lambda endpoint, *data: self.app.call(connection, endpoint, *data)

    def stop(self) -> float:
        """Stops polling; returns the CPU seconds the pollers used."""
        self.done.set()
        if self.path != "queue":
            for t in self.threads:
                t.join()
            return time.process_time() - self.cpu  # this process's: the pollers' threads, and a loop sleeping 1 s
        cpu = 0.0
        for _ in self.procs:
            latencies, used = self.results.get()
            cpu += used
            for k, v in latencies.items():
                self.latencies[k] += v
        return cpu

    def close(self) -> None:
        if self.path == "queue":
            for _ in self.procs:
                self.names.put(None)
            for p in self.procs:
                p.join(timeout=30)


def others() -> str:
    """What else used the CPU (other workers share this machine)."""
    me = {os.getpid()}
    out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, check=False).stdout
    rows = [line.split(None, 3) for line in out.splitlines()[1:]]
    busy = [r for r in rows if float(r[2]) >= 5 and int(r[0]) not in me and int(r[1]) not in me]
    return "; ".join(f"{r[3][:70]} ({r[2]}% CPU)" for r in busy[:5]) or "nothing else busy"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def p95_line(values: list[float]) -> str:
    p95 = statistics.quantiles(values, n=20)[-1] * 1000 if len(values) > 1 else float("nan")
    return f"p95 {p95:.0f} ms, median {statistics.median(values) * 1000:.0f} ms over {len(values)} calls"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="training time of each run")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between one client's polls")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paths", default="run,call,queue", help="the polling paths measured: run, call, queue")
    parser.add_argument("--call-without-session", action="store_true", help="the call path's clients send no "
                        "session hash (as a bare curl does)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is measured")
    parser.add_argument("--threads-per-run", type=int, help="the app's flag (default: its own, the cores per run)")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    assert set(paths) <= {"run", "call", "queue"}, "--paths takes run, call and/or queue"
    phases = ["none", *paths]
    latencies = {p: {"list_runs": [], "run_metrics": []} for p in paths}
    rates: dict[str, list[float]] = {p: [] for p in phases}
    loads: dict[str, list[str]] = {p: [] for p in phases}
    cpu: dict[str, list[str]] = {p: [] for p in phases}
    poller_cost = {p: [0.0, 0] for p in paths}  # the pollers' CPU seconds and calls, over the rounds
    config = config_text(args.seconds)
    print(f"app of {args.root.resolve()}; load average before: {load()}; busy: {others()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--threads-per-run", str(args.threads_per_run)] if args.threads_per_run else []
        app = App(Path(tmp) / "ws", args.root, *flags)
        pollers = {}
        try:
            pollers = {p: Pollers(app, p, args.clients, args.every, args.call_without_session) for p in phases}
            for i in range(args.rounds):
                for phase in phases[i % len(phases):] + phases[:i % len(phases)]:  # each phase goes first in turn
                    name, finish = app.run(config)
                    app_cpu = app.cpu_seconds()
                    pollers[phase].start(name)
                    rate = finish()
                    pollers_cpu = pollers[phase].stop()
                    app_cpu = app.cpu_seconds() - app_cpu
                    for k, v in pollers[phase].latencies.items():
                        latencies.get(phase, {}).get(k, []).extend(v)
                    if phase in poller_cost:
                        poller_cost[phase][0] += pollers_cpu
                        poller_cost[phase][1] += sum(len(v) for v in pollers[phase].latencies.values())
                    rates[phase].append(rate)
                    loads[phase].append(load())
                    cpu[phase].append(f"app {app_cpu:.1f} s, pollers {pollers_cpu:.1f} s")
                    print(f"round {i + 1}: {rate:.0f} images/s, "
                          + (f"{args.clients} clients polling through {phase}" if phase != "none" else "unpolled")
                          + f"; CPU {cpu[phase][-1]}; load average {load()}", flush=True)
        finally:
            for p in pollers.values():
                p.close()
            app.close()
    quiet = max(rates["none"])
    print(f"images/s unpolled {quiet:.0f} (CPU {'; '.join(cpu['none'])}; load averages {'; '.join(loads['none'])})")
    for path in paths:
        best = max(rates[path])
        print(f"path {path}: images/s polled by {args.clients} clients every {args.every:g} s {best:.0f}, "
              f"ratio {best / quiet:.3f} (target >= 0.9; CPU {'; '.join(cpu[path])}; load averages {'; '.join(loads[path])})")
        for endpoint, values in latencies[path].items():
            print(f"  {endpoint} through {path}: {p95_line(values)} (target p95 < 300 ms)")
        # Pollers on the app's own cores: what their calls cost them, and the cores the asked rate would take
        used, calls = poller_cost[path]
        if calls:
            asked = args.clients * len(latencies[path]) / args.every  # calls a second
            print(f"  the pollers' own CPU: {1000 * used / calls:.1f} ms a call; {asked:.0f} calls/s, as asked, would "
                  f"take {asked * used / calls:.2f} cores of the {os.cpu_count()} for the pollers alone")
    print(f"load average after: {load()}; busy: {others()}")


if __name__ == "__main__":
    main()
