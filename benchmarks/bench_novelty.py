"""Novelty vs top-1 confidence at telling non-flower frames from flowers5 photos (issue 24, the field loop).

Runs an export's model (default its tflite-int8) over every flowers5 val photo and over non-flower frames:
crops of real non-flower photos (the Coral test photos without the sunflower, and scikit-learn's sample photo
china.jpg), several crops and flips of each as a camera would frame them. Reports, with 95% bootstrap intervals
(non-flower frames resampled by source photo, since crops of one photo are not independent):

* AUROC of the novelty score and of (1 - top-1 score) for non-flower vs flower, and their difference;
* the share of each group above the export's novelty threshold (flowers: the threshold was set on these very
  photos, so also a two-fold estimate: threshold from one half, share measured on the other);
* the same for top-1 confidence at a threshold keeping the same share of flowers, and the factor by which each
  rule over-represents non-flower frames among those kept, in a stream where they are 10% of frames.

    python benchmarks/bench_novelty.py EXPORT_DIR [--model model_int8.tflite] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("EDGECNN_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared")).resolve()
NON_FLOWER = ["cat.bmp", "bird.bmp", "grace_hopper.bmp", "cat_720p.jpg"]  # Coral photos; sunflower.bmp is a flower
CROPS = 24  # crops per non-flower photo, besides the whole photo
BOOTSTRAP = 2000
STREAM_SHARE = 0.10  # non-flower frames' share of the stream for the keep-ratio figure


def non_flower_photos() -> list[tuple[str, np.ndarray]]:
    """(name, RGB array) of the real non-flower photos available here."""
    import cv2
    import sklearn

    paths = [SHARED / "data" / "coral" / n for n in NON_FLOWER]
    paths.append(Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg")
    return [(p.name, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)) for p in paths if p.is_file()]


def crops(image: np.ndarray, count: int, rng) -> list[np.ndarray]:
    """The whole photo and ``count`` random square-ish crops (40-100% of the short side), half of them flipped."""
    h, w = image.shape[:2]
    out = [image]
    for _ in range(count):
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = image[y:y + side, x:x + side]
        out.append(np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop))
    return out


def run(model: Path) -> dict:
    from edgecnn.runtime import Classifier

    flowers = sorted((SHARED / "data" / "flowers5" / "val").rglob("*.jpg"))
    rng = np.random.default_rng(0)
    frames, groups = [], []
    for index, (_, photo) in enumerate(non_flower_photos()):
        for crop in crops(photo, CROPS, rng):
            frames.append(crop)
            groups.append(index)
    with Classifier(model) as clf:
        stats = clf.feature_stats
        if stats is None:
            raise SystemExit(f"{model} has no features output or no feature statistics beside it; re-export it")
        start = time.perf_counter()
        inside = [clf.predict(p) for p in flowers]
        outside = [clf.predict(f, order="RGB") for f in frames]
        seconds = time.perf_counter() - start
        scoring = _score_time(stats, inside[0].features)
        calls = _call_times(clf)
    return {"stats": stats, "flower": _figures(stats, inside), "other": _figures(stats, outside),
            "groups": np.array(groups), "seconds": seconds, "score_us": scoring, "frames": len(flowers) + len(frames),
            "calls": calls}


def _call_times(clf, repeats: int = 300) -> dict:
    """Median ms of the model call alone (backend.run) and with its features (backend.run_features), interleaved."""
    batch = clf.preprocess(np.zeros((clf.preprocessor.sample_shape[0], clf.preprocessor.sample_shape[1], 3),
                                    np.uint8), order="RGB")
    times: dict[str, list[float]] = {"run": [], "run_features": []}
    for _ in range(repeats):
        for name in times:
            start = time.perf_counter()
            getattr(clf.backend, name)(batch)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: round(float(np.median(t)), 3) for name, t in times.items()} | {"repeats": repeats}


def _figures(stats, predictions) -> dict:
    return {"novelty": np.array([stats.score(p.features) for p in predictions]),
            "doubt": np.array([1.0 - p.score for p in predictions])}


def _score_time(stats, features, repeats: int = 2000) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        stats.score(features)
    return (time.perf_counter() - start) / repeats * 1e6


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half."""
    diff = positive[:, None] - negative[None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


def keep_ratio(other_rate: float, flower_rate: float, share: float = STREAM_SHARE) -> float:
    """How many times their stream share non-flower frames make up of the kept frames."""
    kept = share * other_rate + (1 - share) * flower_rate
    return float(other_rate / kept) if kept > 0 else float("nan")


def analyse(result: dict, seed: int = 0) -> dict:
    """Point figures and 95% bootstrap intervals (flowers iid, non-flower frames by source photo)."""
    flower, other, groups = result["flower"], result["other"], result["groups"]
    threshold = result["stats"].threshold
    rng = np.random.default_rng(seed)
    point = _point(flower, other, threshold)
    photos = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in photos]
    draws = []
    for _ in range(BOOTSTRAP):
        f = rng.integers(0, len(flower["novelty"]), len(flower["novelty"]))
        o = np.concatenate([members[i] for i in rng.integers(0, len(photos), len(photos))])
        draws.append(_point({k: v[f] for k, v in flower.items()}, {k: v[o] for k, v in other.items()}, threshold))
    out = {}
    for key, value in point.items():
        values = np.array([d[key] for d in draws], dtype=float)
        low, high = np.nanpercentile(values, [2.5, 97.5])
        out[key] = {"value": round(value, 4), "ci95": [round(float(low), 4), round(float(high), 4)]}
    out["flowers_above_threshold_two_fold"] = _two_fold(flower["novelty"], result["stats"].meta)
    return out


def _point(flower: dict, other: dict, threshold: float) -> dict:
    doubt_cut = np.percentile(flower["doubt"], 100 * (1 - np.mean(flower["novelty"] > threshold)))
    rates = {"novelty": (np.mean(other["novelty"] > threshold), np.mean(flower["novelty"] > threshold)),
             "top1": (np.mean(other["doubt"] > doubt_cut), np.mean(flower["doubt"] > doubt_cut))}
    a_novelty, a_doubt = auroc(other["novelty"], flower["novelty"]), auroc(other["doubt"], flower["doubt"])
    return {
        "auroc_novelty": a_novelty, "auroc_one_minus_top1": a_doubt, "auroc_difference": a_novelty - a_doubt,
        "non_flower_above_novelty_threshold": float(rates["novelty"][0]),
        "flowers_above_novelty_threshold": float(rates["novelty"][1]),
        "non_flower_below_matched_top1_threshold": float(rates["top1"][0]),
        "flowers_below_matched_top1_threshold": float(rates["top1"][1]),
        "keep_ratio_novelty": keep_ratio(*rates["novelty"]),
        "keep_ratio_top1_matched": keep_ratio(*rates["top1"]),
    }


def _two_fold(scores: np.ndarray, meta: dict) -> dict:
    """Flowers above a 99th-percentile threshold set on the other half of the photos (an honest false-alarm rate)."""
    rng = np.random.default_rng(1)
    order = rng.permutation(len(scores))
    halves = order[: len(order) // 2], order[len(order) // 2:]
    above = [np.sum(scores[b] > np.percentile(scores[a], meta.get("threshold_percentile", 99.0)))
             for a, b in (halves, halves[::-1])]
    k, n = int(sum(above)), len(scores)
    return {"value": round(k / n, 4), "above": k, "of": n, "ci95_exact": _clopper_pearson(k, n)}


def _clopper_pearson(k: int, n: int) -> list[float]:
    from scipy.stats import beta

    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return [round(low, 4), round(high, 4)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="a flowers5 export folder (with feature_stats.npz)")
    parser.add_argument("--model", default="model_int8.tflite", help="the model file in it (default %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = run(args.export / args.model)
    figures = analyse(result)
    report = {
        "model": args.model, "export": str(args.export), "stats": result["stats"].summary(),
        "flower_photos": int(len(result["flower"]["novelty"])),
        "non_flower_frames": int(len(result["groups"])), "non_flower_photos": int(len(np.unique(result["groups"]))),
        "non_flower_sources": [name for name, _ in non_flower_photos()], "crops_per_photo": CROPS + 1,
        "stream_share_for_keep_ratio": STREAM_SHARE, "bootstrap": BOOTSTRAP, "figures": figures,
        "seconds_for_all_frames": round(result["seconds"], 1), "frames": result["frames"],
        "score_microseconds_per_frame": round(result["score_us"], 1),
        "model_call_median_ms": result["calls"],
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version()},
        "command": f"python benchmarks/bench_novelty.py {args.export} --model {args.model}",
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
