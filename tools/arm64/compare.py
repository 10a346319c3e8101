"""Per-image class probabilities from the emulated board vs this machine: accuracy, top-1 agreement, max difference.

Reads the JSON files ``classify.py`` writes (stdlib only: the harness runs on the host's bare Python).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MAX_LISTED = 20  # disagreeing images listed by name in a results file


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def top1(probs: list[float]) -> int:
    """Index of the highest probability; ties go to the lower index (as ``Classifier.topk``)."""
    return max(range(len(probs)), key=lambda i: (probs[i], -i))


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def accuracy(result: dict) -> dict:
    rows = result["images"]
    correct = sum(top1(probs) == label for _, label, probs in rows)
    return {"correct": correct, "images": len(rows), "accuracy": round(correct / len(rows), 4) if rows else None,
            "ci95": wilson(correct, len(rows))}


def compare(device: dict, reference: dict) -> dict:
    """Top-1 agreement and max |p_device - p_reference| over the images both classified (matched by path)."""
    ref = {path: probs for path, _, probs in reference["images"]}
    missing = [path for path, _, _ in device["images"] if path not in ref]
    if missing or len(ref) != len(device["images"]):
        raise ValueError(f"{device['model']}: the two runs classified different images ({len(missing)} unmatched)")
    agree, max_diff, differing = 0, 0.0, []
    for path, label, probs in device["images"]:
        other = ref[path]
        a, b = top1(probs), top1(other)
        agree += a == b
        max_diff = max(max_diff, max(abs(p - q) for p, q in zip(probs, other)))
        if a != b:
            differing.append({"image": path, "label": device["classes"][label], "device": device["classes"][a],
                              "reference": device["classes"][b]})
    n = len(device["images"])
    return {"images": n, "agree": agree, "agreement": round(agree / n, 4) if n else None,
            "agreement_ci95": wilson(agree, n), "max_abs_diff": round(max_diff, 6),
            "disagreements": differing[:MAX_LISTED], "disagreements_total": len(differing)}
