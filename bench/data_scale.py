"""Datasets at scale (issue 14): preparation speed, time to the first step, memory, memory-map throughput.

Writes N synthetic photos (random crops of scikit-image's bundled photos, 320 x 320 JPEGs, quality 90) into a
temporary folder and prints, for training at 256 px RGB:
  1. first preparation (pipelines.data.prepare) with one worker and with all cores, each into a fresh workspace;
  2. seconds from launching `python -m pipelines train` (a tiny UNet) to its first optimizer step, on a second run
     on the same data (a first run in the same workspace prepared the cache), seen in runs.sqlite (target < 5 s);
  3. peak anonymous memory (RssAnon of the training process, sampled every 0.2 s; file-backed pages of the memory
     map do not count) of those runs (target < 2 GB at N = 100,000);
  4. training images/s reading from the memory map against the in-memory path on configs/ddpm_digits16.yaml,
     alternated in this process (target >= 0.95), and the time to read one batch each way (immune to the load).
The load average and the busiest other processes are printed with each figure: they share the CPU.

    python bench/data_scale.py                     # N = 20,000 (about 4 GB of cache in /tmp)
    python bench/data_scale.py --n 100000          # the full check: ~20 GB of cache plus ~3 GB of JPEGs
    python bench/data_scale.py --folder /tmp/jpegs --keep --only prep,train     # reuse the JPEGs between runs
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DIGITS = ROOT / "configs" / "ddpm_digits16.yaml"
AT_256 = ["data.image_size=256", "data.channels=3"]
# Six levels: the UNet's middle block (always with attention) then works at 8 x 8, not 128 x 128 (seconds a step).
TINY = ["model.base_channels=4", "model.channel_mults=[1,1,1,1,1,1]", "model.layers_per_block=1",
        "model.attention_resolutions=[]", "training.batch_size=1", "training.epochs=100", "training.sample_every_epochs=1000", "training.num_sample_images=1",
        "training.sample_steps=1", "training.checkpoint_every_epochs=1000", "evaluation.every_epochs=0",
        "evaluation.final=false"]
QUIET = ["evaluation.every_epochs=0", "training.sample_every_epochs=1000", "training.checkpoint_every_epochs=1000",
         "training.max_minutes=null", "training.epochs=1000"]


# --- what else is running ------------------------------------------------------------------------------------

def _cpu_ticks() -> dict[int, int]:
    ticks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[int(pid)] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks


def machine() -> str:
    """Load average and the other processes busy over the last second (the lead's tests, say)."""
    before = _cpu_ticks()
    time.sleep(1.0)
    after, hz, mine = _cpu_ticks(), os.sysconf("SC_CLK_TCK"), os.getpid()
    busy = sorted(((after[p] - before.get(p, after[p])) / hz, p) for p in after if p != mine)[::-1]
    names = []
    for share, pid in busy[:3]:
        if share >= 0.1:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70].strip()
            except OSError:
                continue
            names.append(f"{share:.0%} {cmd}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"[load {load} on {os.cpu_count()} cores; others busy: {'; '.join(names) or 'none'}]"


# --- synthetic photos ----------------------------------------------------------------------------------------

_PHOTOS: list = []


def _load_photos() -> None:
    import skimage.data
    from PIL import Image

    from pipelines.data.builtin import PHOTOS

    for name in PHOTOS:
        try:
            _PHOTOS.append(Image.fromarray(getattr(skimage.data, name)()[..., :3]).convert("RGB"))
        except Exception:  # some need a download: use the others
            pass


def _write(task: tuple[Path, range]) -> int:
    from PIL import Image

    folder, indices = task
    for i in indices:
        path = folder / f"{i // 1000:03d}" / f"{i:06d}.jpg"
        if path.exists():
            continue
        rng = np.random.default_rng(i)
        img = _PHOTOS[int(rng.integers(len(_PHOTOS)))]
        w, h = img.size
        side = int(rng.integers(min(w, h) // 4, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        img.crop((x, y, x + side, y + side)).resize((320, 320), Image.Resampling.BILINEAR).save(path, quality=90)
    return len(indices)


def write_photos(folder: Path, n: int) -> None:
    """N photos in subfolders of 1,000 (written once: a reused --folder only gets the missing ones)."""
    for k in range(0, n, 1000):
        (folder / f"{k // 1000:03d}").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count(), initializer=_load_photos) as pool:
        sum(pool.imap_unordered(_write, [(folder, range(k, min(k + 250, n))) for k in range(0, n, 250)]))
    size = sum(f.stat().st_size for f in folder.rglob("*.jpg")) / 1e9
    print(f"{n:,} JPEGs (320 px) in {folder}: {size:.1f} GB, ready in {time.perf_counter() - start:.0f} s")


# --- 1. preparation ------------------------------------------------------------------------------------------

def bench_prep(folder: Path, n: int, base: Path) -> None:
    from pipelines.config import load_config
    from pipelines.data import prepare

    for workers in (1, 0):
        ws = base / f"ws-prep{workers}"
        cfg = load_config(DIGITS, [f"data.dataset={folder}", *AT_256, f"data.workers={workers}"]).data
        context = machine()
        start = time.perf_counter()
        prepared = prepare(cfg, ws)
        seconds = time.perf_counter() - start
        label = "1 worker" if workers == 1 else f"all cores ({os.cpu_count()} workers)"
        print(f"first preparation, {label}: {len(prepared):,} images in {seconds:.1f} s = {n / seconds:,.0f} images/s, "
              f"cache {prepared.pixels.nbytes / 1e9:.1f} GB {context}")
        del prepared
        shutil.rmtree(ws)


# --- 2 and 3. training runs in a child process ----------------------------------------------------------------

def rss(pid: int) -> tuple[int, int]:
    """(RssAnon, RssFile) of a process in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            key, kb, _ = line.split()
            values[key] = int(kb) * 1024
    return values.get("RssAnon:", 0), values.get("RssFile:", 0)


def store_row(ws: Path, name: str):
    try:
        with sqlite3.connect(f"file:{ws / 'runs.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT step, phase, status FROM runs WHERE name=?", (name,)).fetchone()
    except sqlite3.Error:
        return None


def train_child(folder: Path, ws: Path, name: str, minutes: float) -> dict:
    """Launch a training run; the seconds to its first step (runs.sqlite, polled every 0.1 s) and peak memory."""
    cmd = [sys.executable, "-m", "pipelines", "train", "--config", str(DIGITS), "--workspace", str(ws), "--name", name,
           "--quiet"]
    for value in (f"data.dataset={folder}", *AT_256, *TINY, f"training.max_minutes={minutes}"):
        cmd += ["--set", value]
    out = open(ws / f"{name}.out", "w")
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    seen, peak_before, peak_after, peak_file, tick = {}, 0, 0, 0, 0  # seen: when the store showed each stage
    while child.poll() is None:
        time.sleep(0.1)
        tick += 1
        now = time.perf_counter() - start
        if "step" not in seen:
            row = store_row(ws, name)
            if row:
                seen.setdefault("row", now)  # imports done, run created
                if row[1] is not None:
                    seen.setdefault("data", now)  # build_trainer began reading the data
                elif "data" in seen:
                    seen.setdefault("ready", now)  # data read (or prepared): the model is built next
                if (row[0] or 0) >= 1:
                    seen["step"] = now
        if tick % 2 == 0:  # memory every 0.2 s
            try:
                anon, file = rss(child.pid)
            except (OSError, ValueError):
                continue
            if "step" not in seen:
                peak_before = max(peak_before, anon)
            else:
                peak_after = max(peak_after, anon)
            peak_file = max(peak_file, file)
    out.close()
    if child.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({child.returncode}):\n{(ws / f'{name}.out').read_text()[-3000:]}")
    return {**seen, "anon_before": peak_before, "anon_after": peak_after, "file": peak_file,
            "total": time.perf_counter() - start}


def bench_train(folder: Path, n: int, base: Path, minutes: float) -> None:
    ws = base / "ws-train"
    ws.mkdir()
    for name, label in (("first", "first run (prepares the cache)"), ("second", "second run, same data")):
        context = machine()
        r = train_child(folder, ws, name, minutes)
        gb = 1024 ** 3
        stages = f"run created at {r['row']:.1f} s, " + (
            f"data read from {r['data']:.1f} to {r['ready']:.1f} s" if "ready" in r else "data read within one poll")
        print(f"{label}: first optimizer step {r['step']:.1f} s after launch ({stages}); peak RssAnon "
              f"{r['anon_before'] / gb:.2f} GB before it, {r['anon_after'] / gb:.2f} GB while training "
              f"(peak RssFile {r['file'] / gb:.2f} GB, not counted); {r['total']:.0f} s in all {context}")
    print(f"  targets at N = {n:,}: second run's first step < 5 s; peak RssAnon < 2 GB")
    shutil.rmtree(ws)


# --- 4. memory map against in memory --------------------------------------------------------------------------

def throughput(rounds: int, steps: int, base: Path) -> None:
    import torch

    from pipelines import families
    from pipelines.config import load_config
    from pipelines.data import ImageDataset, load_splits
    from pipelines.train.callbacks import Callback
    from pipelines.train.run import train

    class Clock(Callback):
        def __init__(self):
            self.start = self.end = None

        def on_step_end(self, trainer, logs):
            if trainer.state.global_step == 10:
                self.start = time.perf_counter()
            elif trainer.state.global_step >= steps:
                self.end = time.perf_counter()
                trainer.request_stop("benchmark done")

    trainer_class = families.get("ddpm").trainer_class()
    own, reads_map = trainer_class.__dict__.get("load_data"), trainer_class.load_data

    def in_memory(cls, config, workspace=None, progress=None, should_stop=None):
        """The same data, its training split copied out of the map into memory."""
        splits = reads_map(config, workspace, progress, should_stop)
        t = splits.train
        splits.train = ImageDataset.from_tensor(t.all_images(), t.labels, t.captions)
        return splits

    cfg = load_config(DIGITS, QUIET)
    ws = base / "ws-digits"
    # The data path alone, free of the CPU's other load: a 64-image batch read from the map and from memory.
    mapped_split = load_splits(cfg.data, ws).train
    copied = ImageDataset.from_tensor(mapped_split.all_images(), mapped_split.labels, mapped_split.captions)
    for label, ds in (("memory map", mapped_split), ("in memory", copied)):
        batches = [torch.randperm(len(ds))[:64] for _ in range(2000)]
        start = time.perf_counter()
        for b in batches:
            ds.batch(b)
        print(f"  reading a 64-image batch, {label}: {(time.perf_counter() - start) / 2000 * 1e6:.0f} us")

    def rate(memory: bool) -> float:
        clock = Clock()
        if memory:
            trainer_class.load_data = classmethod(in_memory)
        try:
            train(cfg, ws, progress=False, extra_callbacks=[clock])
        finally:
            if own is not None:
                trainer_class.load_data = own
            elif "load_data" in trainer_class.__dict__:
                del trainer_class.load_data
        return (steps - 10) * cfg.training.batch_size / (clock.end - clock.start)

    context = machine()
    maps, mems = [], []
    for k in range(rounds):  # alternate the order, so drift in the machine's load hits both alike
        for memory in ((False, True) if k % 2 == 0 else (True, False)):
            (mems if memory else maps).append(rate(memory))
        print(f"  round {k + 1}: memory map {maps[-1]:.0f} images/s, in memory {mems[-1]:.0f} images/s, "
              f"ratio {maps[-1] / mems[-1]:.3f}")
    print(f"training images/s on the digits default ({steps - 10} timed steps, evaluation/grids/checkpoints off): "
          f"memory map {np.median(maps):.0f}, in memory {np.median(mems):.0f}; ratio of medians "
          f"{np.median(maps) / np.median(mems):.3f}, of bests {max(maps) / max(mems):.3f} (target >= 0.95) {context}")
    shutil.rmtree(ws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="synthetic photos (default 20,000; 100000 for the full check)")
    parser.add_argument("--folder", type=Path, help="where the JPEGs go (kept); default a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary JPEG folder and print where it is")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()), help="where the workspaces go")
    parser.add_argument("--only", default="prep,train,throughput", help="comma-separated: prep, train, throughput")
    parser.add_argument("--minutes", type=float, default=0.5, help="training minutes of each run of the 'train' figures")
    parser.add_argument("--rounds", type=int, default=3, help="throughput: rounds of memory map vs in memory")
    parser.add_argument("--steps", type=int, default=60, help="throughput: optimizer steps per measurement")
    args = parser.parse_args()
    only = set(args.only.split(","))
    import torch

    print(f"data_scale: N = {args.n:,}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores; {machine()}")
    print(subprocess.run(["df", "-h", str(args.tmp)], capture_output=True, text=True).stdout.strip())
    base = Path(tempfile.mkdtemp(prefix="data_scale-", dir=args.tmp))
    folder = args.folder or base / "photos"
    try:
        if only & {"prep", "train"}:
            write_photos(folder, args.n)
        if "prep" in only:
            bench_prep(folder, args.n, base)
        if "train" in only:
            bench_train(folder, args.n, base, args.minutes)
        if "throughput" in only:
            throughput(args.rounds, args.steps, base)
    finally:
        if args.keep and args.folder is None and folder.exists():
            kept = args.tmp / f"data_scale-photos-{args.n}"
            shutil.rmtree(kept, ignore_errors=True)
            folder.rename(kept)
            print(f"kept the JPEGs in {kept} (reuse with --folder {kept})")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
