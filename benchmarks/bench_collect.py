"""`edgecnn camera --collect` on a stream that mixes flowers5 val photos with non-flower photos (issue 24).

Builds a 640x480 MJPG video: each flowers5 val photo and each non-flower frame (crops of the Coral test photos:
cat, bird, Grace Hopper; the Coral sunflower is left out, it is a flower) held for ``--hold`` frames, non-flower
frames at ``--other-share`` of the photos, in a seeded random order. Then, in one process, ``--repeats`` pairs of
camera runs over it, alternating without and with ``--collect`` (the same `edgecnn camera` command line otherwise),
and reports:

- FPS with / without --collect: per pair, and their ratio's median with a 95 % t-interval over the pairs (log ratio);
  the same for the process's CPU ms per frame (steadier than FPS on a machine others load);
- what --collect kept: the share of non-flower frames among the kept ones against their share of the stream
  (enrichment; 95 % Clopper-Pearson interval of the kept share divided by the stream share), overall and per rule;
- the collection folder's bytes against --collect-budget.

Usage: python benchmarks/bench_collect.py MODEL [--repeats 3] [--flowers 300] [--out benchmarks/results/X.json]
        [-- extra edgecnn camera options, e.g. --collect-rate 1000/min]
       python benchmarks/bench_collect.py MODEL --screenshot docs/img/preview-drift.png
         (the preview with its drift plots, by tools/docs_pictures.py's preview_screenshot: a paced video of
         flowers5 photos, then non-flower photos, taken once the recent window departs from the baseline)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgecnn import cli
from edgecnn._io import write_json
from edgecnn.collect.store import iter_collection
from edgecnn.export.stats import clopper_pearson
from edgecnn.machine import machine_info

SHARED = Path(os.environ.get("EDGECNN_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared")).resolve()
OTHERS = ("cat_720p.jpg", "cat.bmp", "bird.bmp", "grace_hopper.bmp")
SIZE = (640, 480)


def crops(image: np.ndarray, n: int, rng: random.Random) -> list[np.ndarray]:
    """``n`` random crops (40-100 % of the side, any position, half mirrored) resized to SIZE."""
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        f = rng.uniform(0.4, 1.0)
        ch, cw = int(h * f), int(w * f)
        y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
        crop = image[y:y + ch, x:x + cw]
        out.append(cv2.resize(crop[:, ::-1] if rng.random() < 0.5 else crop, SIZE, interpolation=cv2.INTER_AREA))
    return out


def build_stream(flowers: int, other_share: float, seed: int) -> tuple[list[np.ndarray], list[bool]]:
    """Photos (flowers5 val, then non-flower crops) shuffled; True where a photo is not a flower."""
    rng = random.Random(seed)
    val = sorted((SHARED / "data" / "flowers5" / "val").glob("*/*.jpg"))
    picked = rng.sample(val, min(flowers, len(val)))
    photos = [(cv2.resize(cv2.imread(str(p)), SIZE, interpolation=cv2.INTER_AREA), False) for p in picked]
    n_other = round(len(photos) * other_share / (1 - other_share))
    per = math.ceil(n_other / len(OTHERS))
    others = [c for name in OTHERS for c in crops(cv2.imread(str(SHARED / "data" / "coral" / name)), per, rng)]
    photos += [(c, True) for c in others[:n_other]]
    rng.shuffle(photos)
    return [p for p, _ in photos], [o for _, o in photos]


def write_video(path: Path, photos: list[np.ndarray], hold: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
    for photo in photos:
        for _ in range(hold):
            writer.write(photo)
    writer.release()


def camera(model: str, video: Path, collect: Path | None, extra: list[str]) -> tuple[dict, float]:
    """One `edgecnn camera --json` run: its summary, and the CPU ms per frame of this process (all its threads:
    the loop, the capture reader, the collector's writer) over the whole run."""
    argv = ["camera", model, "--source", str(video), "--headless", "--json"]
    argv += (["--collect", str(collect)] + extra) if collect else []
    out = io.StringIO()
    cpu = time.process_time()
    with contextlib.redirect_stdout(out):
        rc = cli.main(argv)
    cpu = time.process_time() - cpu
    if rc:
        sys.exit(f"edgecnn {' '.join(argv)} failed ({rc})")
    summary = json.loads(out.getvalue().splitlines()[-1])["summary"]
    return summary, 1000 * cpu / summary["frames"]


def ratio(pairs: list[tuple[float, float]]) -> dict:
    """with/without over paired runs: the median, and the geometric mean with its 95 % t-interval (log ratios)."""
    logs = np.log([w / wo for wo, w in pairs])
    n = len(logs)
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1) * logs.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"pairs": [{"without": round(wo, 2), "with": round(w, 2)} for wo, w in pairs],
            "ratio_median": round(float(np.exp(np.median(logs))), 4),
            "ratio_geomean": round(float(np.exp(logs.mean())), 4),
            "ratio_ci95": [round(float(np.exp(logs.mean() - half)), 4), round(float(np.exp(logs.mean() + half)), 4)]}


def enrichment(kept: list[dict], other: list[bool], hold: int) -> dict:
    """Non-flower share among ``kept`` sidecars against the stream's, overall and per rule."""
    stream_share = sum(other) / len(other)

    def one(items: list[dict]) -> dict:
        k = sum(other[m["frame"] // hold] for m in items)
        n = len(items)
        low, high = clopper_pearson(k, n) if n else (float("nan"), float("nan"))
        return {"kept": n, "non_flower": k, "share": round(k / n, 4) if n else None,
                "enrichment": round(k / n / stream_share, 3) if n else None,
                "enrichment_ci95": [round(low / stream_share, 3), round(high / stream_share, 3)]}

    rules = sorted({m["rule"] for m in kept})
    return {"stream_share": round(stream_share, 4), "all": one(kept),
            "per_rule": {r: one([m for m in kept if m["rule"] == r]) for r in rules}}


SHOT_FLOWERS, SHOT_OTHERS, SHOT_FPS, SHOT_WINDOW = 45, 600, 15, 20  # frames; departed from about 3.7 s to 7 s


def screenshot(model: str, dest: Path, tries: int = 4) -> None:
    """The preview with drift plots in ``dest``: retried until the page shows the departure (it depends on when
    Chromium comes up: the paced video keeps it for a few seconds)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from docs_pictures import preview_screenshot, shrink_png

    photos, other = build_stream(SHOT_FLOWERS + SHOT_OTHERS, 0.5, seed=1)
    flowers = [p for p, o in zip(photos, other) if not o][:SHOT_FLOWERS]
    others = [p for p, o in zip(photos, other) if o]
    frames = flowers + [others[i // 3 % len(others)] for i in range(SHOT_OTHERS)]
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "drift.avi"
        write_video(video, frames, hold=1)
        options = ("--fps", str(SHOT_FPS), "--drift-window", str(SHOT_WINDOW), "--collect", str(Path(tmp) / "c"))
        for attempt in range(1, tries + 1):
            shot = preview_screenshot(Path(model), video, dest, options, window=(720, 1000))
            if 'id="drift-text" class="warn"' in shot.page:
                shrink_png(dest)
                print(f"wrote {dest} (attempt {attempt})")
                return
            print(f"attempt {attempt}: the page did not show the departure yet; again", flush=True)
    sys.exit(f"no screenshot with the departure in {tries} attempts")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--flowers", type=int, default=300, help="flowers5 val photos in the stream")
    p.add_argument("--other-share", type=float, default=0.1, help="share of non-flower photos")
    p.add_argument("--hold", type=int, default=2, help="frames each photo stays in view")
    p.add_argument("--repeats", type=int, default=3, help="pairs of runs without/with --collect")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="results JSON")
    p.add_argument("--screenshot", metavar="PNG", help="only take the preview screenshot with drift plots")
    args, extra = p.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.screenshot:
        screenshot(args.model, Path(args.screenshot))
        return 0

    photos, other = build_stream(args.flowers, args.other_share, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "mixed.avi"
        write_video(video, photos, args.hold)
        pairs, cpu_pairs, kept, summary = [], [], [], {}
        for i in range(args.repeats):
            without, cpu_without = camera(args.model, video, None, extra)
            folder = Path(tmp) / f"collect{i}"
            summary, cpu_with = camera(args.model, video, folder, extra)
            pairs.append((without["fps"], summary["fps"]))
            cpu_pairs.append((cpu_without, cpu_with))
            print(f"pair {i + 1}: {without['fps']:.1f} FPS without, {summary['fps']:.1f} FPS with --collect; CPU "
                  f"{cpu_without:.1f} / {cpu_with:.1f} ms a frame", flush=True)
            kept = [c.meta for c in iter_collection(folder)]  # the last run, as the summary
            on_disk = sum(f.stat().st_size for f in folder.iterdir() if not f.name.startswith("."))

    collect = summary["collect"]
    result = {
        "command": "python benchmarks/bench_collect.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": Path(args.model).name,
        "stream": {"frames": len(photos) * args.hold, "photos": len(photos), "non_flower_photos": sum(other),
                   "hold": args.hold, "size": list(SIZE), "seed": args.seed,
                   "non_flower": "random crops of the Coral test photos " + ", ".join(OTHERS)},
        "camera_options": extra,
        "fps": ratio(pairs),
        "cpu_ms_per_frame": ratio(cpu_pairs),
        "kept": enrichment(kept, other, args.hold),
        "collect_summary": collect,
        "disk": {"bytes": on_disk, "budget_bytes": collect["budget_bytes"],
                 "within_budget": on_disk <= collect["budget_bytes"]},
        "machine": machine_info(),
    }
    print(json.dumps({k: result[k] for k in ("fps", "cpu_ms_per_frame", "kept", "disk")}, indent=1))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
