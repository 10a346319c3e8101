"""`edgecnn benchmark MODEL...`: compare formats on latency, throughput, memory, size and accuracy."""

from __future__ import annotations

import argparse
import logging

from edgecnn.commands._args import PROVIDERS_HELP, int_at_least, name_list, thread_count

HELP = "benchmark exported formats: latency percentiles, throughput, memory, size, accuracy; tables, files, plots"


def _threads(text: str) -> list[int]:
    """Comma-separated thread counts, each as :func:`~edgecnn.commands._args.thread_count` takes it."""
    from edgecnn.runtime.base import MAX_THREADS

    try:
        values = [thread_count(v) for v in text.split(",") if v.strip()]
    except argparse.ArgumentTypeError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected comma-separated whole numbers from 1 to "
                                         f"{MAX_THREADS}, e.g. 1,2,4")
    return sorted(set(values))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="a Keras model or training run directory (exported first), an export folder, "
                             "or exported model files (.tflite, .onnx, .keras, SavedModel folder)")
    parser.add_argument("--data", metavar="VAL_DIR",
                        help="labeled images, one sub-folder per class, for top-1/top-5 accuracy "
                             "(default: synthetic images, no accuracy)")
    parser.add_argument("--formats", metavar="LIST",
                        help="comma-separated format names or 'all' "
                             "(default: all; for an export folder, what it holds)")
    parser.add_argument("--threads", type=_threads, metavar="1,2,4",
                        help="interpreter thread counts to try (default: 1 and the number of cores)")
    parser.add_argument("--runs", type=int_at_least(1), metavar="N",
                        help="timed inferences per measurement (default: 100)")
    parser.add_argument("--warmup", type=int_at_least(0), metavar="N", help="untimed inferences first (default: 10)")
    parser.add_argument("--batch", type=int_at_least(1), metavar="N",
                        help="also measure throughput at this batch size where the model allows (default: 1)")
    parser.add_argument("--providers", type=name_list, metavar="LIST", help=PROVIDERS_HELP)
    parser.add_argument("--device", metavar="PROFILE",
                        help="take defaults from a device profile shipped with edgecnn (e.g. raspberry-pi-5, x86-64)")
    parser.add_argument("--out", metavar="DIR", default="edgecnn-benchmark",
                        help="results folder (default: edgecnn-benchmark)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite the results of an earlier benchmark in --out (default: refuse)")
    parser.add_argument("--no-plots", action="store_true", help="skip benchmark.png and latency_distribution.png")
    parser.add_argument("--plain", action="store_true", help="plain progress lines instead of a progress bar")
    remote = parser.add_argument_group("on a board (the release `edgecnn deploy` put there; needs the deploy extra)")
    remote.add_argument("--remote", action="append", metavar="USER@HOST[:PORT]",
                        help="benchmark on this board over SSH, results pulled into --out/<host>/ (repeat for more)")
    remote.add_argument("--key", metavar="FILE", help="SSH private key (default: your SSH agent and ~/.ssh)")
    remote.add_argument("--known-hosts", metavar="FILE", help="known_hosts file (default: ~/.ssh/known_hosts)")


def run_remote(args: argparse.Namespace) -> int:
    """--remote: the deployed release, measured on each board (Ansible, as `edgecnn deploy --benchmark`)."""
    from edgecnn.deploy import job
    from edgecnn.errors import UsageError

    if args.models:
        raise UsageError("with --remote the release deployed on the board is measured: pass no MODEL")
    threads = ",".join(str(t) for t in args.threads) if args.threads else 4
    opts = job.Options(hosts=args.remote, key=args.key, known_hosts=args.known_hosts, threads=threads,
                       benchmark_runs=args.runs or 50, results=args.out)
    outcomes = job.remote_benchmark(opts)
    print(job.table(outcomes, done="measured"), flush=True)
    log = logging.getLogger("edgecnn.commands")
    for o in outcomes:
        if not o.ok:
            log.error(f"error: {o.host}: {o.message}")
    log.info(f"results: {args.out}/<host>/ (results.json, results.md, device.json)")
    return 0 if all(o.ok for o in outcomes) else 1


def run(args: argparse.Namespace) -> int:
    from edgecnn.bench.report import render_text
    from edgecnn.errors import UsageError

    if args.remote:
        return run_remote(args)
    if not args.models:
        raise UsageError("pass a MODEL to benchmark (a Keras model, run directory, export folder or model files), "
                         "or --remote USER@HOST for a board's deployed release")
    from edgecnn.bench.run import BenchConfig, benchmark

    options = {"formats": args.formats, "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
               "batch": args.batch}
    if args.device:
        from edgecnn.bench.devices import benchmark_defaults, load_profile

        for key, value in benchmark_defaults(load_profile(args.device)).items():
            if options[key] is None:
                options[key] = ",".join(value) if key == "formats" and isinstance(value, list) else value
    defaults = {"runs": 100, "warmup": 10, "batch": 1}
    options = {k: (defaults.get(k) if v is None else v) for k, v in options.items()}
    config = BenchConfig(models=args.models, data=args.data, device=args.device, out=args.out,
                         providers=args.providers, plots=not args.no_plots, plain_progress=args.plain,
                         force=args.force, **options)
    result = benchmark(config)
    print()
    print(render_text(result.rows, result.findings))
    for note in result.notes:
        logging.getLogger("edgecnn.commands").warning(note)
    print(f"\nresults: {', '.join(str(f) for f in result.files)}")
    return 0 if any(r.measured for r in result.rows) else 1
