"""`edgecnn collect pull HOST... --out DIR`: the frames the boards kept (camera --collect), home and sorted."""

from __future__ import annotations

import argparse
import logging

from edgecnn.commands._args import positive_int
from edgecnn.deploy import COLLECT_DIR

HELP = "bring the frames the boards' cameras kept (--collect) home over SSH, sorted by predicted class to relabel"

log = logging.getLogger("edgecnn.collect")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgecnn.cli import _add_common

    sub = p.add_subparsers(dest="collect_command", metavar="ACTION", title="actions", required=True)
    pull = sub.add_parser("pull", help="copy each board's collection into DIR/<predicted class>/ and remove it from "
                                       "the board once the copy is verified",
                          description="Copy each board's collection into DIR/<predicted class>/<host>-<frame>.jpg "
                                      "(sidecars in DIR/.sidecars/, one row per frame in DIR/index.csv), verified "
                                      "by sha256; only then are the frames removed from the board. A re-run adds "
                                      "what is new. Fix labels by moving files between class folders, then train "
                                      "with --data BASE --data DIR.")
    _add_common(pull, sub_command=True)  # -v / -q after the action too
    pull.add_argument("hosts", nargs="*", metavar="HOST", help="user@host[:port] of each board")
    pull.add_argument("--out", required=True, metavar="DIR", help="the sorted folder (created; a re-run adds to it)")
    pull.add_argument("--inventory", metavar="FILE", help="an Ansible inventory of boards instead of HOST arguments")
    pull.add_argument("--remote-dir", default=COLLECT_DIR, metavar="PATH",
                      help=f"the collection on the boards, under the login user's home unless absolute "
                           f"(default: {COLLECT_DIR}, where `edgecnn deploy --collect` puts it)")
    pull.add_argument("--key", metavar="FILE", help="SSH private key (default: your SSH agent and ~/.ssh)")
    pull.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to check host keys against "
                                                           "(default: ~/.ssh/known_hosts)")
    pull.add_argument("--forks", type=positive_int, default=10, metavar="N", help="boards pulled at once (default: 10)")


def run(args: argparse.Namespace) -> int:
    from edgecnn.collect.sorted_folder import INDEX_FILE
    from edgecnn.deploy import job, pull

    opts = job.Options(hosts=list(args.hosts), inventory=args.inventory, key=args.key, known_hosts=args.known_hosts,
                       forks=args.forks)
    results = pull.pull(opts, args.out, args.remote_dir)
    print(pull.table(results), flush=True)
    for r in results:
        if not r.outcome.ok:
            log.error(f"error: {r.outcome.host}: {r.outcome.message}")
    new = sum(r.stored.new for r in results if r.stored)
    log.info(f"{new} new frames in {args.out}/<predicted class>/ (index: {args.out}/{INDEX_FILE}); fix labels by "
             f"moving files between class folders, then: edgecnn train --data BASE --data {args.out}")
    return 0 if all(r.outcome.ok for r in results) else 1
