"""Training at scale, measured against a baseline checkout in the same run, alternating (a shared machine is noisy).

    git worktree add /work/runs/scale/base c1e3568        # the baseline ("today"): any edgecnn checkout
    .venv/bin/python benchmarks/bench_scale.py --base /work/runs/scale/base --work /work/runs/scale/bench

Parts (``--parts``, comma-separated; default all of them):

- ``loading``: images/s making flowers5 train + val (4,317 images, 128 px) ready for training, each time in a
  fresh process: the baseline's ``load_folder`` (decode into memory), edgecnn with an empty cache (cold: decode
  in worker processes into the cache) and again (cached). ``--load-rounds`` rounds.
- ``readme``: the README flowers5 command (mobilenet_v2, 128 px, shared weights, 3 frozen + 4 fine-tune epochs),
  baseline and edgecnn (empty cache) alternating, ``--readme-rounds`` rounds, seed = round: wall time, peak RSS,
  validation accuracy, each phase's seconds and images/s.
- ``rss``: peak RSS of a 1-epoch mobilenet_v2 @128 ``edgecnn train`` on flowers5 and on 10x flowers5 (34,510
  training images: copies under other names, built once under ``--work``); ``--rss-base`` measures the
  baseline too.
- ``workers``: the 2-worker test of tests/test_train.py.
- ``intervals`` (after ``readme``, same ``--work``): each README run's validation accuracy with its 95 % interval
  and each edgecnn run minus the baseline run of its seed, paired on the same images (paired score interval).

Results: a summary on stdout, everything in ``--out`` (JSON): each measurement, medians, the ratios and the
issue's targets (#14). Timings are wall-clock on whatever else the machine runs: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", REPO / ".." / "shared")).resolve()
FLOWERS = SHARED / "data" / "flowers5"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_imagenet_no_top.weights.h5"
PARTS = ("loading", "readme", "rss", "workers", "intervals")
README_ARGS = ["--arch", "mobilenet_v2", "--img-size", "128", "--weights", str(WEIGHTS), "--epochs", "3",
               "--fine-tune-epochs", "4", "--fine-tune-layers", "40"]
# Runs a command, then prints its wall time and the peak RSS of the largest process it started.
MEASURE = ("import json, resource, subprocess, sys, time\n"
           "t = time.perf_counter(); rc = subprocess.call(sys.argv[1:], stdout=sys.stderr)\n"
           "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t,\n"
           "                  'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")


# --- child processes: edgecnn's code or the baseline's ----------------------------------------------------------

def _use_baseline(base: str) -> None:
    """Import edgecnn from ``base``, not from this checkout (an editable install's finder comes first)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    sys.path.insert(0, base)
    for name in [m for m in sys.modules if m == "edgecnn" or m.startswith("edgecnn.")]:
        del sys.modules[name]


def _child(args) -> int:
    if args.child_code != "new":
        _use_baseline(args.child_code)
    if args.child_load:
        return _child_load(args.child_code != "new")
    from edgecnn.cli import main

    return main(args.rest)


def _child_load(baseline: bool) -> int:
    """Load flowers5 train + val at 128 px; print the seconds and the image count. The clock starts before
    the loader is imported: one version may import its decoders (Pillow, OpenCV) when loaded, the other on
    first use."""
    started = time.perf_counter()
    if baseline:
        from edgecnn.data import load_folder as load
    else:
        from edgecnn.data import open_folder as load
    train = load(FLOWERS / "train", 128)
    val = load(FLOWERS / "val", 128, class_names=train.class_names)
    print(json.dumps({"seconds": time.perf_counter() - started, "images": len(train) + len(val)}))
    return 0


def _command(code: str, rest: list[str], load: bool = False) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child-code", code,
            *(["--child-load"] if load else []), "--", *rest]


def _run(command: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``command`` under the MEASURE wrapper; its output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, "-c", MEASURE, *command], stdout=subprocess.PIPE, stderr=handle,
                              text=True, env={**os.environ, **(env or {}), "TF_CPP_MIN_LOG_LEVEL": "2"},
                              cwd=REPO)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"failed ({result['rc']}): {' '.join(command)}; see {log}")
    return result


def _say(text: str) -> None:
    print(text, flush=True)


# --- parts -------------------------------------------------------------------------------------------------------

def part_loading(args, work: Path) -> dict:
    rows = []
    for r in range(args.load_rounds):
        cache = work / "cache-loading"
        shutil.rmtree(cache, ignore_errors=True)
        order = ["base", "cold", "cached"] if r % 2 == 0 else ["cold", "cached", "base"]
        for kind in order:
            code = args.base if kind == "base" else "new"
            log = work / "logs" / f"loading-{kind}-{r}.log"
            _run(_command(code, [], load=True), log, {"EDGECNN_CACHE_DIR": str(cache)})
            measured = json.loads(log.read_text().strip().splitlines()[-1])
            rows.append({"round": r, "kind": kind, **measured,
                         "images_per_second": measured["images"] / measured["seconds"]})
            _say(f"loading {kind:6} round {r}: {measured['seconds']:.2f} s "
                 f"({rows[-1]['images_per_second']:.0f} images/s)")
    med = {k: statistics.median(x["seconds"] for x in rows if x["kind"] == k) for k in ("base", "cold", "cached")}
    return {"rows": rows, "median_seconds": med,
            "cold_speedup": med["base"] / med["cold"], "cached_speedup": med["base"] / med["cached"]}


def _phase_figures(run: Path, baseline: bool) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    out = {"val_accuracy": metrics["val_accuracy"], "train_images": metrics["train_images"]}
    if baseline:
        history = json.loads((run / "history.json").read_text())
        for phase in ("frozen", "fine-tune"):
            seconds = [s for s, p in zip(history["seconds"], history["phase"]) if p == phase]
            out[phase] = {"seconds": sum(seconds), "epochs": len(seconds),
                          "images_per_second": metrics["train_images"] * len(seconds) / sum(seconds)}
    else:
        for phase in metrics["phases"]:
            out[phase["phase"]] = {k: phase[k] for k in ("seconds", "epochs", "images_per_second",
                                                          "feature_seconds")}
    return out


def part_readme(args, work: Path) -> dict:
    rows = []
    seeds = [int(x) for x in args.readme_seeds.split(",")] if args.readme_seeds else range(1, args.readme_rounds + 1)
    kinds = [k.strip() for k in args.readme_kinds.split(",")]
    for r in seeds:
        for kind in [k for k in (["base", "new"] if r % 2 else ["new", "base"]) if k in kinds]:
            out = work / "readme" / f"{kind}-seed{r}"
            shutil.rmtree(out, ignore_errors=True)
            cache = work / f"cache-readme-{r}"
            shutil.rmtree(cache, ignore_errors=True)  # cold: edgecnn decodes everything once in this run
            rest = ["train", "--data", str(FLOWERS / "train"), "--val", str(FLOWERS / "val"), *README_ARGS,
                    "--seed", str(r), "--out", str(out)]
            run = _run(_command(args.base if kind == "base" else "new", rest), work / "logs" / f"readme-{kind}-{r}.log",
                       {"EDGECNN_CACHE_DIR": str(cache)})
            rows.append({"round": r, "kind": kind, "wall_seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
                         **_phase_figures(out, kind == "base")})
            row = rows[-1]
            _say(f"readme {kind:4} seed {r}: {row['wall_seconds']:.0f} s, val {row['val_accuracy']:.4f}, frozen "
                 f"{row['frozen']['seconds']:.0f} s, fine-tune {row['fine-tune']['seconds']:.0f} s")

    def med(kind, key, phase=None):
        values = [(x[phase][key] if phase else x[key]) for x in rows if x["kind"] == kind]
        return statistics.median(values)

    if set(kinds) != {"base", "new"}:
        return {"rows": rows}
    summary = {k: {"wall_seconds": med(k, "wall_seconds"), "val_accuracy": med(k, "val_accuracy"),
                   "frozen_seconds": med(k, "seconds", "frozen"), "fine_tune_seconds": med(k, "seconds", "fine-tune"),
                   "frozen_images_per_second": med(k, "images_per_second", "frozen"),
                   "fine_tune_images_per_second": med(k, "images_per_second", "fine-tune")} for k in ("base", "new")}
    return {"rows": rows, "median": summary,
            "frozen_speedup": summary["base"]["frozen_seconds"] / summary["new"]["frozen_seconds"],
            "fine_tune_speedup": summary["base"]["fine_tune_seconds"] / summary["new"]["fine_tune_seconds"],
            "wall_fraction": summary["new"]["wall_seconds"] / summary["base"]["wall_seconds"],
            "val_accuracy_difference": summary["new"]["val_accuracy"] - summary["base"]["val_accuracy"]}


def make_tenfold(work: Path) -> Path:
    """flowers5/train ten times over, each copy under another name: 34,510 images."""
    root = work / "flowers5x10" / "train"
    marker = root.parent / ".complete"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for source in sorted((FLOWERS / "train").glob("*/*")):
        folder = root / source.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for copy in range(10):
            shutil.copyfile(source, folder / f"{source.stem}_copy{copy}{source.suffix}")
    marker.write_text("10 copies of flowers5/train\n")
    return root


def part_rss(args, work: Path) -> dict:
    tenfold = make_tenfold(work)
    rows = []
    kinds = ["new"] + (["base"] if args.rss_base else [])
    for kind in kinds:
        for name, data in (("flowers5", FLOWERS / "train"), ("flowers5x10", tenfold)):
            out = work / "rss" / f"{kind}-{name}"
            shutil.rmtree(out, ignore_errors=True)
            cache = work / f"cache-rss-{name}"
            shutil.rmtree(cache, ignore_errors=True)
            rest = ["train", "--arch", "mobilenet_v2", "--img-size", "128", "--weights", str(WEIGHTS), "--epochs", "1",
                    "--data", str(data), "--val", str(FLOWERS / "val"), "--out", str(out)]
            run = _run(_command(args.base if kind == "base" else "new", rest), work / "logs" / f"rss-{kind}-{name}.log",
                       {"EDGECNN_CACHE_DIR": str(cache)})
            images = json.loads((out / "metrics.json").read_text())["train_images"]
            rows.append({"kind": kind, "data": name, "train_images": images, "peak_rss_mb": run["peak_rss_mb"],
                         "wall_seconds": run["seconds"]})
            _say(f"rss {kind} {name} ({images} images): peak {run['peak_rss_mb']:.0f} MB, {run['seconds']:.0f} s")
    new = {r["data"]: r["peak_rss_mb"] for r in rows if r["kind"] == "new"}
    return {"rows": rows, "tenfold_ratio": new["flowers5x10"] / new["flowers5"]}


def part_workers(args, work: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_train.py",
                           "-k", "two_workers"], cwd=REPO, capture_output=True, text=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    (work / "logs" / "workers.log").write_text(done.stdout + done.stderr)
    passed = done.returncode == 0
    _say(f"workers: 2-worker test {'passed' if passed else 'FAILED'} in {time.perf_counter() - started:.0f} s")
    return {"passed": passed, "seconds": time.perf_counter() - started}


def _correct(run: Path, val):
    """Which validation images the run's model gets right (its own labels.txt order mapped to ``val``'s)."""
    import numpy as np

    from edgecnn.train.evaluate import load_trained
    from edgecnn.train.features import predict

    net, labels, _, _ = load_trained(run)
    order = np.asarray([labels.index(name) for name in val.class_names])
    return np.argmax(predict(net, val), axis=1) == order[val.labels]


def part_intervals(args, work: Path) -> dict:
    """Each README run's validation accuracy with its 95 % interval, and each edgecnn run (and ``--compare`` run)
    minus the baseline run of the same seed on the same 866 images (paired score interval)."""
    from edgecnn.data import open_folder
    from edgecnn.export.stats import clopper_pearson, paired_difference

    val = open_folder(FLOWERS / "val", 128)
    runs = sorted(p for p in (work / "readme").glob("*-seed*") if (p / "model.keras").is_file())
    runs += [Path(p) for p in args.compare or []]
    correct, rows = {}, []
    for run in runs:
        seed = json.loads((run / "config.json").read_text())["seed"]
        hits = _correct(run, val)
        correct[run] = (seed, hits)
        low, high = clopper_pearson(int(hits.sum()), len(hits))
        rows.append({"run": str(run), "seed": seed, "val_accuracy": float(hits.mean()), "interval_95": [low, high]})
        _say(f"intervals {run}: seed {seed}, val {hits.mean():.4f} [{low:.4f}, {high:.4f}]")
    base = {seed: hits for run, (seed, hits) in correct.items() if run.name.startswith("base-")}
    pairs = []
    for run, (seed, hits) in correct.items():
        if run.name.startswith("base-") or seed not in base:
            continue
        diff = paired_difference(base[seed], hits)
        pairs.append({"run": str(run), "seed": seed, "difference": diff.difference, "gained": diff.gained,
                      "lost": diff.lost, "interval_95": [diff.low, diff.high]})
        _say(f"intervals {run} - base seed {seed}: {diff.difference:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] "
             f"({diff.gained} gained, {diff.lost} lost)")
    return {"images": len(val), "runs": rows, "paired_vs_base": pairs}


def targets(results: dict) -> list[dict]:
    """The issue's "done when" figures that this run measured."""
    rows = []

    def add(name, value, ok):
        rows.append({"target": name, "value": round(value, 3), "ok": bool(ok)})

    if "rss" in results:
        add("peak RSS 10x flowers5 / flowers5 <= 1.3", results["rss"]["tenfold_ratio"],
            results["rss"]["tenfold_ratio"] <= 1.3)
    if "loading" in results:
        add("cold loading speed-up >= 1.8", results["loading"]["cold_speedup"],
            results["loading"]["cold_speedup"] >= 1.8)
        add("cached loading speed-up >= 5", results["loading"]["cached_speedup"],
            results["loading"]["cached_speedup"] >= 5)
    if "frozen_speedup" in results.get("readme", {}):  # both kinds ran
        readme = results["readme"]
        add("frozen phase speed-up >= 5", readme["frozen_speedup"], readme["frozen_speedup"] >= 5)
        add("val accuracy new - base >= -0.01", readme["val_accuracy_difference"],
            readme["val_accuracy_difference"] >= -0.01)
        add("README command wall time new / base <= 0.5", readme["wall_fraction"], readme["wall_fraction"] <= 0.5)
    if "workers" in results:
        add("2-worker test passes", float(results["workers"]["passed"]), results["workers"]["passed"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a baseline edgecnn checkout (e.g. a git worktree at c1e3568)")
    parser.add_argument("--work", default="/tmp/edgecnn-bench-scale", help="scratch folder (data copies, runs, logs)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--load-rounds", type=int, default=5)
    parser.add_argument("--readme-rounds", type=int, default=2, help="readme: seeds 1..N")
    parser.add_argument("--readme-seeds", help="readme: these seeds instead (comma-separated)")
    parser.add_argument("--readme-kinds", default="base,new", help="readme: base, new or both (comma-separated)")
    parser.add_argument("--rss-base", action="store_true", help="also measure the baseline's peak RSS (slow at 10x)")
    parser.add_argument("--compare", nargs="*", metavar="RUN", help="intervals: more run folders to compare with "
                        "the baseline run of their seed")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "scale.json"))
    parser.add_argument("--child-code", help=argparse.SUPPRESS)
    parser.add_argument("--child-load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rest[:1] == ["--"]:
        args.rest = args.rest[1:]
    if args.child_code:
        return _child(args)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or (not args.base and set(parts) & {"loading", "readme"}):
        parser.error(f"unknown parts {unknown}" if unknown else "--base is needed for loading and readme")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    from edgecnn.machine import machine_info

    results: dict = {"machine": machine_info(), "load_average_at_start": os.getloadavg(), "base": args.base}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for part in parts:  # saved after each part, so a long run that is stopped keeps what it measured
        results[f"load_average_before_{part}"] = os.getloadavg()
        results[part] = globals()[f"part_{part}"](args, work)
        results["load_average_at_end"] = os.getloadavg()
        results["targets"] = targets(results)
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for row in results["targets"]:
        _say(f"{'ok  ' if row['ok'] else 'MISS'} {row['target']}: {row['value']}")
    _say(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
