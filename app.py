"""Start the studio: python app.py [--host 127.0.0.1] [--port 7860] [--workspace checkpoints] [--max-concurrent-runs 1]
[--webhook URL]"""
from __future__ import annotations

import argparse
import inspect
import os
import sys

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
APP_NICENESS = 10  # polling browser tabs and scripts yield the CPU to training runs


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The generative image studio in your browser.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--workspace", default="checkpoints", help="folder of runs and the run store")
    p.add_argument("--max-concurrent-runs", type=int, default=1, help="runs trained at the same time; the rest wait in a queue")
    p.add_argument("--threads-per-run", type=int, help="CPU threads of each run (default: the cores but one, "
                   "divided by --max-concurrent-runs)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (needed with a --host other than this machine)")
    p.add_argument("--no-auth", action="store_true", help="allow a --host other than this machine without a login")
    p.add_argument("--max-upload-mb", type=int, default=1024, help="largest upload accepted (zips of images)")
    p.add_argument("--webhook", metavar="URL", help="JSON POST to this URL when any run ends (a run's notify.webhook "
                   "wins; default: $PIPELINES_WEBHOOK)")
    args = p.parse_args(argv)
    if args.host not in LOCAL_HOSTS and not (args.auth or args.no_auth):
        p.error(f"--host {args.host} makes the studio reachable from other machines: add --auth user:password, "
                "or --no-auth if you really want it open")
    if args.auth and ":" not in args.auth:
        p.error("--auth takes user:password")
    return args


QUEUE_IDLE_SECONDS, PROGRESS_EVERY_SECONDS = 0.02, 0.1


def idle_queue_gently(demo) -> None:
    """Gradio's queue looks for work every 1 ms and for progress every 10 ms, even with no page open: the idle app
    took 1.0 s of CPU in 20 s (5% of a core, taken from the runs training beside it); every 20 ms and 100 ms, 0.18 s.
    A queued event starts at most 20 ms later (the read endpoints do not wait in the queue at all: studio/api.py)."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_IDLE_SECONDS)
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, PROGRESS_EVERY_SECONDS)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.webhook:
        os.environ["PIPELINES_WEBHOOK"] = args.webhook  # the runs, child processes, read it from their environment
    import gradio as gr
    from gradio.utils import get_upload_folder
    from starlette.middleware import Middleware

    from studio.api import SharedReadSession
    from studio.app import CSS, build_app
    from studio.files import WorkspaceFiles, blocked_paths
    from studio.hosts import HostCheck, allowed_hosts

    demo, _ = build_app(args.workspace, args.max_concurrent_runs, args.threads_per_run)
    if sys.platform.startswith("linux"):
        # Serve at a lower priority than the runs: on Linux this sets the calling thread only, and the server's threads
        # start from this one, while the run manager's threads (which start the runs) already run at the usual one.
        os.nice(APP_NICENESS)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    if args.host not in LOCAL_HOSTS:
        print(f"Listening on {args.host}: reachable from other machines" + (" with the login you gave." if auth else " WITHOUT a login."))
    workspace = os.path.abspath(args.workspace)
    options = {}
    if "_frontend" in inspect.signature(gr.Blocks.launch).parameters:
        # Gradio's start-up check HEADs the page once with a 3-s timeout and exits ("a shareable link must be created")
        # when the answer is late, as it is on a machine busy training; the server has answered its own start-up
        # request by then, so the check adds nothing here.
        options["_frontend"] = False
    demo.queue(default_concurrency_limit=4)
    idle_queue_gently(demo)
    demo.launch(
        server_name=args.host, server_port=args.port, auth=auth, max_file_size=f"{args.max_upload_mb}mb",
        css=CSS, footer_links=["api"], show_error=True, quiet=False,
        allowed_paths=[workspace],  # so that results the handlers return may be copied to Gradio's cache...
        blocked_paths=blocked_paths(workspace),  # ...never the store
        app_kwargs={"middleware": [Middleware(HostCheck, allowed=allowed_hosts(args.host, args.port)),  # DNS rebinding
                                   Middleware(WorkspaceFiles, workspace=workspace, cache=get_upload_folder()),  # only copies
                                   Middleware(SharedReadSession)]}, **options)


if __name__ == "__main__":
    sys.exit(main())
