"""`edgecnn collect pull`: the boards' collections brought home over SSH (Ansible), removed there once stored here.

Two playbook runs: ``collect_pull.yml`` packs each board's complete frames into an archive with a sha256 manifest
and fetches it (checksum verified); the controller stores the frames whose checksums match
(:mod:`edgecnn.collect.sorted_folder`); then ``collect_remove.yml`` removes from each board exactly those frames.
A pull interrupted anywhere before the second run removes nothing; the next one stores only what is new.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgecnn.collect import store
from edgecnn.collect.sorted_folder import Stored, store_archive
from edgecnn.deploy import COLLECT_DIR, ansible, job
from edgecnn.errors import OutputError
from edgecnn.table import text_table

log = logging.getLogger("edgecnn.deploy")

ARCHIVE = "edgecnn/incoming/collect-pull.tar"  # on the board, under the login user's home
PULLED_LIST = "edgecnn/incoming/collect-pulled.json"
INCOMING = ".incoming"  # under --out: archives fetched and not yet stored


@dataclass
class Pulled:
    """One host's pull: the Ansible outcome and what was stored here."""

    outcome: ansible.Outcome
    stored: Stored | None = None
    removed: int = 0


def _home(path: str) -> str:
    """A board path for the playbooks: under the login user's home unless absolute."""
    return path if path.startswith(("/", "~")) else f"~/{path}"


def _vars(remote_dir: str) -> dict:
    return {"edgecnn_collect_dir": _home(remote_dir), "edgecnn_collect_archive": _home(ARCHIVE),
            "edgecnn_collect_list": _home(PULLED_LIST), "edgecnn_stem_re": store.STEM_RE.pattern,
            "edgecnn_image_suffix": store.IMAGE_SUFFIX, "edgecnn_sidecar_suffix": store.SIDECAR_SUFFIX}


def pull(opts: job.Options, out: str, remote_dir: str = COLLECT_DIR) -> list[Pulled]:
    """Pull every host's collection (``remote_dir`` under its home) into ``out``; one Pulled per host."""
    out_dir = Path(out)
    incoming = out_dir / INCOMING
    with tempfile.TemporaryDirectory(prefix="edgecnn-pull-") as tmp:
        inventory = job.inventory_file(opts, Path(tmp))  # bad hosts: one error line, nothing created
        try:
            incoming.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--out {out}: cannot create a folder there ({exc.strerror or exc}); pass a folder "
                              f"path") from None
        extravars = {**_vars(remote_dir), "edgecnn_pull_incoming": str(incoming.resolve())}
        results = [Pulled(o) for o in ansible.run_playbook("collect_pull.yml", inventory, extravars,
                                                           forks=opts.forks)]
        for r in results:
            if r.outcome.ok and int(r.outcome.result.get("count", 0)):
                _store(r, incoming / f"{r.outcome.host}.tar", out_dir)
        # hosts that packed frames: their verified ones and the archive go (an empty archive stays, tiny)
        pulled = {r.outcome.host: (r.stored.verified if r.stored else []) for r in results
                  if r.outcome.ok and int(r.outcome.result.get("count", 0))}
        if pulled:
            removal = ansible.run_playbook("collect_remove.yml", inventory, {**extravars, "edgecnn_pulled": pulled},
                                           forks=opts.forks)
            _merge_removal(results, removal)
    with contextlib.suppress(OSError):
        incoming.rmdir()  # kept only while it holds an archive not yet stored
    return results


def _store(r: Pulled, archive: Path, out_dir: Path) -> None:
    """Store one host's archive; a failure here (an unreadable archive, a full disk) fails that host only."""
    try:
        r.stored = store_archive(archive, out_dir, r.outcome.host)
    except OutputError as exc:
        r.outcome.ok, r.outcome.message = False, f"{exc}; nothing was removed from the board"


def _merge_removal(results: list[Pulled], removal: list[ansible.Outcome]) -> None:
    by_host = {o.host: o for o in removal}
    for r in results:
        second = by_host.get(r.outcome.host)
        if not r.outcome.ok or second is None:
            continue
        if second.ok:
            r.removed = int(second.result.get("removed", 0))
        else:
            r.outcome.ok, r.outcome.unreachable = False, second.unreachable  # stored here, still on the board
            r.outcome.message = f"stored here, not removed from the board ({second.message}); pull again"


def table(results: list[Pulled]) -> str:
    """host, result, frames on the board, new here, already here, removed from the board."""
    rows = []
    for r in results:
        o, s = r.outcome, r.stored or Stored()
        state = ("unreachable" if o.unreachable else "failed") if not o.ok else "pulled"
        rows.append([o.host, state, o.result.get("count", "-") if o.ok else "-", s.new, s.already, r.removed])
    return text_table(["host", "result", "on board", "new", "already here", "removed from board"], rows)
