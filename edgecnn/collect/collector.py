"""The collector: a sink of the live loop that keeps frames by the rules, saving them off the loop's thread.

The loop only decides (rules, duplicate check, rate limit) and, for a kept frame, copies it into a bounded queue;
a worker thread encodes and writes it (``CollectionStore``). When the queue is full the frame is dropped and
counted: the loop never waits for the disk.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from edgecnn.collect import store as s
from edgecnn.collect.rules import Duplicates, RateLimit, Rules
from edgecnn.errors import EdgeCNNError

log = logging.getLogger(__name__)

QUEUE_SIZE = 8  # frames waiting for the disk; at 640x480 about 7 MB


@dataclass(frozen=True)
class Origin:
    """The sidecar fields that are the same for every frame of a run."""

    model: str
    source: str
    release: Optional[str] = None
    host: str = socket.gethostname()


class Collector:
    """Sink: ``handle(event)`` sees the frame before the overlay is drawn (``needs_raw``)."""

    needs_image = False
    needs_raw = True
    REPORT_KEY = "collect"  # its summary() in the run summary and the preview

    def __init__(self, store: s.CollectionStore, rules: Rules, origin: Origin, rate: RateLimit,
                 duplicates: Optional[Duplicates] = None, queue_size: int = QUEUE_SIZE):
        self.store, self.rules, self.origin, self.rate = store, rules, origin, rate
        self.duplicates = duplicates or Duplicates()
        self.fired: Counter = Counter()    # frames each rule chose
        self.queued: Counter = Counter()   # of those, frames handed to the writer
        self.skipped: Counter = Counter()  # duplicate, rate-limited, queue-full, over-budget
        self.error: Optional[str] = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._worker = threading.Thread(target=self._write_loop, name="edgecnn-collect", daemon=True)
        self._worker.start()

    def handle(self, event) -> bool:
        if not event.classified or event.result is None or self.error:
            return False
        ranked = getattr(event.result, "ranked", None) or event.result.top
        decision = self.rules.decide(ranked, getattr(event.result, "features", None))
        if decision.rule is None:
            return False
        self.fired[decision.rule] += 1
        reason = self._skip_reason(event)
        if reason:
            self.skipped[reason] += 1
            return False
        item = (event.image.copy(), self._sidecar(event, ranked, decision), event.t)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.skipped["queue-full"] += 1
            return False
        self.queued[decision.rule] += 1
        return False

    def _skip_reason(self, event) -> Optional[str]:
        if self.duplicates.seen(event.image):
            return "duplicate"
        if not self.rate.allow():
            return "rate-limited"
        return None

    def _sidecar(self, event, ranked, decision) -> dict:
        top = [{"label": c.label, "score": round(float(c.score), 6)} for c in ranked[: s.TOP_K]]
        height, width = event.image.shape[:2]
        return {
            s.TIME: s.iso_time(event.t), s.HOST: self.origin.host, s.RELEASE: self.origin.release,
            s.MODEL: self.origin.model, s.PREDICTED: top[0]["label"] if top else None,
            s.SCORE: top[0]["score"] if top else None, s.TOP: top, s.RULE: decision.rule,
            s.NOVELTY: None if decision.novelty is None else round(decision.novelty, 4),
            s.FRAME: event.index, s.SOURCE: self.origin.source, s.WIDTH: width, s.HEIGHT: height,
        }

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error:
                continue
            image, meta, t = item
            try:
                if self.store.save(image, meta, t) is None:
                    self.skipped["over-budget"] += 1  # one frame larger than the whole budget
            except EdgeCNNError as exc:  # a full disk: stop collecting, keep the camera running
                self.error = str(exc)
                log.warning("warning: collection stopped: %s", exc)

    def close(self) -> None:
        """Write what is queued, then stop the worker."""
        self._queue.put(None)
        self._worker.join()

    def summary(self) -> dict:
        """Counts per rule and the folder's state, for the run summary, --json and the preview."""
        return {
            "folder": str(self.store.folder),
            "rules": list(self.rules.settings.rules),
            "novelty": "on" if not self.rules.novelty_off else f"off: {self.rules.novelty_off}",
            "chosen": dict(self.fired),
            "kept": dict(self.queued),
            "skipped": {k: self.skipped[k] for k in ("duplicate", "rate-limited", "queue-full", "over-budget")},
            "saved": self.store.saved,
            "evicted": self.store.evicted,
            "frames_on_disk": self.store.frames,
            "bytes_on_disk": self.store.used_bytes,
            "budget_bytes": self.store.budget,
            "error": self.error,
        }


def release_name(model_arg: str) -> Optional[str]:
    """The release folder's name when the camera runs a release of edgecnn deploy (``current`` resolved)."""
    from pathlib import Path

    from edgecnn.rundir import RELEASE_FILE

    path = Path(model_arg)
    return path.resolve().name if (path / RELEASE_FILE).is_file() else None


def build_collector(args, classifier) -> Collector:
    """The collector ``edgecnn camera --collect DIR`` asks for (its --collect-* options), for ``classifier``."""
    from edgecnn.collect.rules import RuleSettings

    settings = RuleSettings(rules=args.collect_rules, min_score=args.collect_min_score, margin=args.collect_margin,
                            random=args.collect_random)
    store = s.CollectionStore(args.collect, int(args.collect_budget * 1e6))
    rules = Rules(settings, getattr(classifier, "feature_stats", None))
    origin = Origin(model=classifier.path.name, source=str(args.source), release=release_name(args.model))
    log.info("collecting into %s (%d frames there, %.1f of %.0f MB)", store.folder, store.frames,
             store.used_bytes / 1e6, store.budget / 1e6)
    return Collector(store, rules, origin, RateLimit(args.collect_rate))
