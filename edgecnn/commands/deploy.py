"""`edgecnn deploy EXPORT_DIR HOST...`: runtime, model release and camera service onto boards over SSH (Ansible)."""

from __future__ import annotations

import argparse
import logging
import shlex

from edgecnn.commands._args import positive_int, thread_count
from edgecnn.deploy import COLLECT_DIR

HELP = "deploy an export to Raspberry Pis over SSH (Ansible): runtime, release, camera service, health check, rollback"

log = logging.getLogger("edgecnn.deploy")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", metavar="EXPORT_DIR HOST",
                   help="the folder `edgecnn export` wrote, then user@host[:port] for each board "
                        "(with --rollback: hosts only)")
    p.add_argument("--inventory", metavar="FILE", help="an Ansible inventory of boards instead of HOST arguments")
    p.add_argument("--format", default="auto", metavar="FORMAT",
                   help="format to run (e.g. tflite-int8); auto: the fastest on the board among those whose "
                        "export check passed (default: auto)")
    p.add_argument("--source", default="0", help="camera source on the board (default: 0; picamera2, a video file, "
                                                  "an rtsp:// or http:// stream)")
    p.add_argument("--serve", metavar="HOST:PORT", help="browser preview on the board (e.g. 0.0.0.0:8080)")
    p.add_argument("--threads", type=thread_count, default=4, metavar="N", help="interpreter threads (default: 4)")
    p.add_argument("--camera-args", default="", metavar="ARGS",
                   help="more `edgecnn camera` options for the service, quoted, e.g. \"--top-k 3 --every 2\"")
    p.add_argument("--no-service", action="store_true", help="install runtime and release only, no systemd unit")
    p.add_argument("--collect", action="store_true",
                   help=f"the service keeps frames worth labelling (edgecnn camera --collect) in ~/{COLLECT_DIR} on "
                        "each board; other --collect-* camera options go in --camera-args; bring them home with "
                        "`edgecnn collect pull`")
    p.add_argument("--benchmark", action="store_true",
                   help="benchmark the release on each board and pull the results to --results")
    p.add_argument("--benchmark-runs", type=positive_int, default=50, metavar="N",
                   help="timed runs per format on the board (default: 50)")
    p.add_argument("--results", default="edgecnn-device-results", metavar="DIR",
                   help="where --benchmark results go, one folder per host (default: edgecnn-device-results)")
    p.add_argument("--rollback", action="store_true", help="switch the hosts back to their previous release")
    p.add_argument("--check", action="store_true", help="show what would change (Ansible check mode); change nothing")
    p.add_argument("--wheel", metavar="FILE", help="the edgecnn wheel to install (default: built from this checkout)")
    p.add_argument("--key", metavar="FILE", help="SSH private key (default: your SSH agent and ~/.ssh)")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to check host keys against "
                                                        "(default: ~/.ssh/known_hosts)")
    p.add_argument("--pip-args", default="", metavar="ARGS",
                   help="extra pip arguments on the boards, e.g. \"--extra-index-url https://www.piwheels.org/simple\"")
    p.add_argument("--keep", type=positive_int, default=3, metavar="N",
                   help="older releases kept per board (default: 3)")
    p.add_argument("--health-timeout", type=positive_int, default=120, metavar="S",
                   help="seconds for the first classification after a (re)start (default: 120)")
    p.add_argument("--forks", type=positive_int, default=10, metavar="N", help="boards deployed at once (default: 10)")


def _camera_args(args: argparse.Namespace) -> tuple[list[str], str]:
    """The service's `edgecnn camera` arguments, checked here by camera's own parser; and the preview URL."""
    from edgecnn.cli import build_parser
    from edgecnn.errors import UsageError
    from edgecnn.video.server import parse_address

    try:
        extra = shlex.split(args.camera_args)
    except ValueError as exc:
        raise UsageError(f"--camera-args {args.camera_args!r}: {exc}") from None
    camera = ["--source", args.source, "--threads", str(args.threads), *extra]
    url = ""
    if args.serve:
        host, port = parse_address(args.serve)
        camera += ["--serve", f"{host}:{port}"]
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/predictions.json"
    if args.collect and "--collect" in extra:
        raise UsageError(f"pass --collect to deploy, not in --camera-args: the board's collection folder is "
                         f"~/{COLLECT_DIR}, where `edgecnn collect pull` finds it")
    build_parser().parse_args(["camera", "MODEL", *camera, *(["--collect", "DIR"] if args.collect else [])])
    return camera, url


def run(args: argparse.Namespace) -> int:
    from edgecnn.deploy import job
    from edgecnn.errors import UsageError

    targets = list(args.targets)
    if not args.rollback:
        if not targets:
            raise UsageError("pass the export folder, then the hosts: edgecnn deploy EXPORT_DIR user@host ...")
        export_dir = targets.pop(0)
    camera, url = _camera_args(args)
    opts = job.Options(hosts=targets, inventory=args.inventory, format=args.format, camera_args=camera,
                       preview_url=url, threads=args.threads, service=not args.no_service,
                       benchmark=args.benchmark, benchmark_runs=args.benchmark_runs, results=args.results,
                       wheel=args.wheel, key=args.key, known_hosts=args.known_hosts, pip_args=args.pip_args,
                       keep=args.keep, health_timeout=args.health_timeout, check=args.check, forks=args.forks,
                       collect=args.collect)
    outcomes = job.rollback(opts) if args.rollback else job.deploy(export_dir, opts)
    print(job.table(outcomes, check=args.check), flush=True)
    for o in outcomes:
        if not o.ok:
            log.error(f"error: {o.host}: {o.message}")
        elif o.result.get("health", "-") != "-":
            log.info(f"{o.host}: health check {o.result['health']} ({o.result.get('service')})")
    if args.benchmark and any(o.ok for o in outcomes):
        log.info(f"on-board results: {args.results}/<host>/ (results.json, results.md, device.json)")
    return 0 if all(o.ok for o in outcomes) else 1
