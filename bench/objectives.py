"""Quality per compute of the diffusion objectives, side by side in one run, on the same UNet and data:

  reference  diffusers' train_unconditional.py: epsilon, linear betas, AdamW 1e-4 (0.95, 0.999, wd 1e-6), batch 16,
             500 warm-up steps, its EMA (power 3/4, up to 0.9999), clip 1
  ddpm       the studio's earlier default: v prediction, cosine betas, min-SNR-5 (the preset's optimiser settings)
  flow       rectified flow, logit-normal t (the preset's optimiser settings)
  edm        EDM preconditioning, log-normal sigma, sigma_data measured (the preset's optimiser settings)

    python bench/objectives.py --preset ddpm_digits16.yaml --minutes 5 --out bench/results/objectives-digits.json
    python bench/objectives.py --preset ddpm_cifar32_cpu.yaml --dataset /tmp/cifar10/train --minutes 20 \\
        --out bench/results/objectives-cifar.json
    python bench/objectives.py --chart bench/results/objectives-*.json --png docs/objectives.png

Recipes may also run side by side as processes of their own (`--recipes flow --out ...-flow.json`, one each):
with the budget in CPU time they get the same compute whatever else runs, and `--chart` merges their files.

Each recipe trains through the studio's own loop (`pipelines.train.run.train`) for the same budget of *training*
time, evaluations excluded. The budget is counted in CPU seconds of this process: `--minutes` on a machine of
`--cores` cores is minutes x 60 x cores CPU-seconds, so that recipes trained one after another get the same compute on
a machine whose other load comes and goes (run it with `--threads 1` on a busy machine: no thread waits for another,
so every CPU-second counted is work); the wall time is printed beside it. FD (the extractor of `--extractor`, `auto` as the studio picks it) of EMA samples
(DPM-Solver++ 20 steps, the same seeds) against the training split at the times of `--at`, then, on each recipe's
last weights, FD against sampler steps for each of the objective's samplers. Results go to a JSON file, with the
metric's floor: the FD of as many training images, drawn at random, against the whole split.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.config import load_config
from pipelines.data import load_splits
from pipelines.metrics.evaluate import Scorer
from pipelines.objectives import SAMPLERS_BY_OBJECTIVE
from pipelines.train.callbacks import Callback
from pipelines.train.run import train

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ["diffusion.objective=ddpm", "diffusion.prediction=epsilon", "diffusion.beta_schedule=linear",
             "diffusion.loss_weighting=none", "training.learning_rate=1e-4", "training.adam_beta1=0.95",
             "training.weight_decay=1e-6", "training.batch_size=16", "training.warmup_steps=500",
             "training.ema_decay=0.9999", "training.ema_warmup_power=0.75", "training.grad_clip=1.0",
             "training.lr_schedule=cosine", "training.epochs=100"]
RECIPES = {
    "reference": REFERENCE,
    "ddpm": ["diffusion.objective=ddpm", "diffusion.prediction=v", "diffusion.beta_schedule=cosine",
             "diffusion.loss_weighting=min_snr"],
    "flow": ["diffusion.objective=flow"],
    "edm": ["diffusion.objective=edm"],
}
SWEEP_STEPS = (1, 2, 4, 8, 16, 32, 50)


def cpu_seconds() -> float:
    return time.process_time()


class ComputeClock(Callback):
    """Scores the EMA weights at the given training CPU-seconds and stops the run at the last of them."""

    def __init__(self, scorer: Scorer, num: int, at: list[float], label: str):
        self.scorer, self.num, self.at, self.label = scorer, num, list(at), label
        self.curve, self.paused, self.paused_wall = [], 0.0, 0.0

    def on_start(self, trainer):
        self.start, self.start_wall = cpu_seconds(), time.perf_counter()

    def on_step_end(self, trainer, logs):
        trained = cpu_seconds() - self.start - self.paused
        if not self.at or trained < self.at[0]:
            return
        self.at.pop(0)
        tick, tick_wall = cpu_seconds(), time.perf_counter()
        fd = self.scorer.score(lambda n, seed: trainer.family.sample_images(n, seed, sampler="dpm++", steps=20), self.num).fd
        wall = tick_wall - self.start_wall - self.paused_wall  # up to this evaluation, without the earlier ones
        self.paused += cpu_seconds() - tick
        self.paused_wall += time.perf_counter() - tick_wall
        self.curve.append({"cpu_s": trained, "wall_s": wall, "step": trainer.state.global_step, "fd": fd})
        print(f"  {self.label:9s} {trained:7.0f} cpu-s {wall:6.0f} wall-s  step {trainer.state.global_step:6d}  FD {fd:.3f}", flush=True)
        if not self.at:
            trainer.request_stop("bench budget")


def floor(scorer: Scorer, images, num: int) -> float:
    """FD of `num` training images drawn at random against the whole split: what a model that reproduced its training
    images would score, so no recipe goes below it (a sample of that size has this bias)."""
    def drawn(n: int, seed: int):
        picked = torch.from_numpy(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
        return images.batch(picked)["images"].permute(0, 2, 3, 1).numpy()

    return scorer.score(drawn, num, batch_size=num).fd


def sampler_sweep(folder: Path, objective: str, scorer: Scorer, num: int, steps_swept=SWEEP_STEPS) -> dict:
    from pipelines.families.ddpm.model import generate, load_diffusion

    model = load_diffusion(folder)
    out = {}
    for sampler in SAMPLERS_BY_OBJECTIVE[objective]:
        if objective == "ddpm" and sampler not in ("dpm++", "ddim"):
            continue  # the reference recipes' usual two
        row = {}
        for steps in steps_swept:
            tick = time.perf_counter()
            fd = scorer.score(lambda n, seed, sampler=sampler, steps=steps: generate(model, sampler, steps, n, seed, batch_size=n), num).fd
            row[steps] = {"fd": fd, "seconds": time.perf_counter() - tick}
            print(f"    {sampler:6s} {steps:3d} steps  FD {fd:.3f}  ({row[steps]['seconds']:.0f} s)", flush=True)
        out[sampler] = row
    return out


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    threads = args.cores  # minutes are minutes of a machine with this many cores
    base = ["evaluation.every_epochs=0", "evaluation.final=false", "training.max_minutes=null",
            "training.sample_every_epochs=1000", "training.checkpoint_every_epochs=1000"]
    if args.dataset:
        base.append(f"data.dataset={args.dataset}")
    preset = ROOT / "configs" / args.preset
    budget = args.minutes * 60 * threads
    at = sorted({budget * f for f in args.at})
    config = load_config(preset, base + RECIPES["flow"])
    workspace = Path(args.workspace or tempfile.mkdtemp(prefix="objectives-"))
    splits = load_splits(config.data, workspace)
    scorer = Scorer(config.data.dataset, splits.train, "train", args.extractor, workspace / "cache")
    print(f"torch {torch.__version__}, {args.threads} threads; {args.preset} on {config.data.dataset} "
          f"({len(splits.train)} training images); budget {args.minutes:g} min x {threads} cores = {budget:.0f} CPU-s "
          f"of training each; FD ({scorer.extractor_name}), {args.num} samples vs {len(scorer.real)} real", flush=True)
    results = {"preset": args.preset, "dataset": config.data.dataset, "minutes": args.minutes, "threads": threads,
               "extractor": scorer.extractor_name, "num": args.num, "sweep_num": args.sweep_num,
               "floor": floor(scorer, splits.train, min(args.num, len(splits.train))), "recipes": {}}
    print(f"floor: {results['floor']:.3f} ({args.num} training images drawn against all of them)", flush=True)
    for name in args.recipes:
        clock = ComputeClock(scorer, args.num, at, name)
        cfg = load_config(preset, base + RECIPES[name])
        started = time.perf_counter()
        row = train(cfg, workspace, progress=False, extra_callbacks=[clock])
        results["recipes"][name] = {"objective": cfg.diffusion.objective, "curve": clock.curve,
                                    "wall_s": time.perf_counter() - started, "folder": row["folder"]}
        print(f"  {name}: {row['step']} steps in {results['recipes'][name]['wall_s']:.0f} s of wall time (with evaluations)",
              flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))
    for name in [n for n in args.sweep_recipes or args.recipes if n in results["recipes"]]:
        entry = results["recipes"][name]
        print(f"samplers of {name} ({entry['objective']}), {args.sweep_num} samples each:", flush=True)
        entry["samplers"] = sampler_sweep(Path(entry["folder"]) / "final", entry["objective"], scorer, args.sweep_num,
                                          args.sweep_steps)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))
    return results


def summary(results: dict) -> None:
    recipes = results["recipes"]
    print(f"\n{results['preset']} on {results['dataset']}: FD ({results['extractor']}, {results['num']} samples, DPM-Solver++ 20)"
          + (f"; floor {results['floor']:.3f} ({results['num']} training images drawn)" if "floor" in results else ""))
    print("recipe     " + "".join(f"{p['cpu_s'] / 60 / results['threads']:>8.1f}m" for p in next(iter(recipes.values()))["curve"]))
    for name, r in recipes.items():
        print(f"{name:10s} " + "".join(f"{p['fd']:9.3f}" for p in r["curve"]))
    ref = recipes.get("reference")
    if ref and ref["curve"]:
        target = ref["curve"][-1]["fd"]
        for name, r in [(n, r) for n, r in recipes.items() if n != "reference"]:
            reached = next((p["cpu_s"] for p in r["curve"] if p["fd"] <= target), None)
            text = f"{ref['curve'][-1]['cpu_s'] / reached:.1f}x sooner" if reached else "not within the budget"
            print(f"  {name} reaches the reference's final FD {target:.3f}: {text} (at the scored times: the first "
                  "point bounds the factor)")
    for name, r in recipes.items():
        for sampler, row in r.get("samplers", {}).items():
            fds = {int(k): v["fd"] for k, v in row.items()}
            if 8 in fds and 50 in fds:
                print(f"  {name} {sampler}: 8 steps FD {fds[8]:.3f} vs 50 steps {fds[50]:.3f} "
                      f"({100 * (fds[8] / fds[50] - 1):+.0f}%)")


def merged(files: list[str]) -> list[dict]:
    """Results files of one preset and dataset (recipes run as separate processes, side by side) as one result each."""
    out: dict[tuple, dict] = {}
    for f in files:
        res = json.loads(Path(f).read_text())
        key = (res["preset"], res["dataset"], res["minutes"])
        recipes = out.setdefault(key, {**res, "recipes": {}})["recipes"]
        for name, entry in res["recipes"].items():  # a recipe in two files (a curve, a sweep's run): the longer
            other = recipes.get(name, {"curve": []})  # curve, and the sweep of either
            longer = entry if len(entry["curve"]) >= len(other["curve"]) else other
            recipes[name] = {**longer, "samplers": entry.get("samplers") or other.get("samplers") or {}}
    for res in out.values():
        res["recipes"] = {name: res["recipes"][name] for name in RECIPES if name in res["recipes"]}
    return list(out.values())


def chart(files: list[str], png: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = merged(files)
    fig = Figure(figsize=(6 * len(runs), 8), dpi=100)
    FigureCanvasAgg(fig)
    for col, res in enumerate(runs):
        top, bottom = fig.add_subplot(2, len(runs), col + 1), fig.add_subplot(2, len(runs), len(runs) + col + 1)
        for name, r in res["recipes"].items():
            colour = f"C{list(RECIPES).index(name)}"  # a recipe's colour in both panels; its samplers by line style
            top.plot([p["cpu_s"] / 60 / res["threads"] for p in r["curve"]], [p["fd"] for p in r["curve"]], "o-",
                     color=colour, label=name)
            for style, (sampler, row) in zip(("o-", "s--", "^:"), r.get("samplers", {}).items()):
                steps = sorted(int(k) for k in row)
                bottom.plot(steps, [row[str(s)]["fd"] if str(s) in row else row[s]["fd"] for s in steps], style,
                            color=colour, label=f"{name} {sampler}")
        if "floor" in res:
            top.axhline(res["floor"], ls="--", color="grey", label=f"floor ({res['num']} training images)")
        top.set(title=f"{res['dataset']} ({res['preset']})", xlabel=f"training minutes of a {res['threads']}-core machine (CPU time)",
                ylabel=f"FD ({res['extractor']}), lower is better", yscale="log")
        bottom.set(xlabel="sampler steps", ylabel="FD of the final weights", xscale="log", yscale="log")
        top.legend()
        if bottom.lines:
            bottom.legend(fontsize=7, ncol=2)
        else:
            bottom.text(0.5, 0.5, "no sampler sweep in these results", ha="center", va="center", transform=bottom.transAxes)
    fig.tight_layout()
    fig.savefig(png)
    print(f"wrote {png}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="ddpm_digits16.yaml", help="config in configs/: the UNet, data and optimiser")
    p.add_argument("--dataset", help="override data.dataset (e.g. the unpacked CIFAR-10 folder)")
    p.add_argument("--minutes", type=float, default=5.0, help="training budget of each recipe (x threads in CPU time)")
    p.add_argument("--cores", type=int, default=2, help="the budget is minutes on a machine of this many cores")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads of this process")
    p.add_argument("--at", type=float, nargs="+", default=[0.125, 0.25, 0.5, 0.75, 1.0], help="FD at these budget shares")
    p.add_argument("--num", type=int, default=1000, help="samples per FD during training")
    p.add_argument("--sweep-num", type=int, default=500, help="samples per FD of the sampler sweep")
    p.add_argument("--extractor", default="auto")
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--sweep-recipes", nargs="+", choices=list(RECIPES), help="the recipes whose samplers are swept "
                   "(default: all)")
    p.add_argument("--sweep-steps", type=int, nargs="+", default=list(SWEEP_STEPS), help="the sweep's step counts")
    p.add_argument("--workspace")
    p.add_argument("--out", help="write the results here (JSON), after each recipe")
    p.add_argument("--chart", nargs="+", metavar="JSON", help="only draw these results files")
    p.add_argument("--png", default="docs/objectives.png")
    args = p.parse_args()
    if args.chart:
        for results in merged(args.chart):
            summary(results)
        return chart(args.chart, args.png)
    summary(run(args))


if __name__ == "__main__":
    main()
