"""Plan a deploy (wheel, release archive, camera arguments, inventory), run it, and tabulate the hosts."""

from __future__ import annotations

import logging
import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.deploy import COLLECT_DIR, ansible, hosts, release, wheel
from edgecnn.errors import UsageError
from edgecnn.table import text_table

log = logging.getLogger("edgecnn.deploy")

_PLAIN = re.compile(r"^[A-Za-z0-9_./:@,+=-]+$")


@dataclass
class Options:
    """What `edgecnn deploy` was asked to do (the CLI's arguments)."""

    hosts: list[str] = field(default_factory=list)
    inventory: str | None = None
    format: str = release.AUTO
    camera_args: list[str] = field(default_factory=lambda: ["--source", "0"])
    preview_url: str = ""
    threads: int | str = 4  # deploy: one count; benchmark --remote: a list such as "1,2,4"
    service: bool = True
    benchmark: bool = False
    benchmark_runs: int = 50
    results: str = "edgecnn-device-results"
    wheel: str | None = None
    key: str | None = None
    known_hosts: str | None = None
    pip_args: str = ""
    keep: int = 3
    health_timeout: int = 120
    check: bool = False
    forks: int = 10
    collect: bool = False  # the service keeps frames in COLLECT_DIR (`edgecnn camera --collect`)


def systemd_quote(arg: str) -> str:
    """One ExecStart argument: systemd splits on spaces, expands $VAR and %-specifiers; none of that reaches us."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    return arg if _PLAIN.match(arg) else '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def camera_vars(camera_args: list[str], preview_url: str) -> dict:
    return {"edgecnn_exec_args": " ".join(systemd_quote(a) for a in camera_args),
            "edgecnn_shell_args": shlex.join(camera_args), "edgecnn_preview_url": preview_url}


def inventory_file(opts: Options, tmp: Path) -> Path:
    """--inventory as given, else one written for the HOST arguments into ``tmp``."""
    if opts.inventory:
        if opts.hosts:
            raise UsageError("pass hosts or --inventory, not both")
        path = Path(opts.inventory)
        if not path.is_file():
            raise UsageError(f"--inventory {path} not found; pass an Ansible inventory file")
        return path
    if not opts.hosts:
        raise UsageError("no host: pass user@host[:port] (one or more) or --inventory FILE")
    parsed = [hosts.parse_host(h) for h in opts.hosts]
    return hosts.write_inventory(parsed, tmp / "inventory.json", opts.key, opts.known_hosts)


def _common_vars(opts: Options) -> dict:
    return {"edgecnn_service": opts.service, "edgecnn_health_timeout": opts.health_timeout,
            "edgecnn_threads": opts.threads, "edgecnn_keep": opts.keep, "edgecnn_collect": opts.collect,
            "edgecnn_collect_dir": COLLECT_DIR}


def deploy(export_dir: str, opts: Options) -> list[ansible.Outcome]:
    """Deploy the export folder to every host; one Outcome per host."""
    folder = Path(export_dir)
    chosen = release.choose(release.export_artifacts(folder), opts.format)
    with tempfile.TemporaryDirectory(prefix="edgecnn-deploy-") as tmp:
        tmp = Path(tmp)
        inventory = inventory_file(opts, tmp)  # bad hosts fail before anything is built
        whl = wheel.find_wheel(opts.wheel)
        archive = tmp / "release.tar.gz"
        sha = release.write_tarball(release.release_files(folder, chosen), archive)
        name = release.release_id(sha, opts.format)
        log.info(f"release {name}: {', '.join(a.format for a in chosen)} from {folder}; wheel {whl.name}")
        extravars = {
            **_common_vars(opts), **camera_vars(opts.camera_args, opts.preview_url),
            "edgecnn_wheel_src": str(whl.resolve()), "edgecnn_wheel_sha": wheel.content_sha(whl)[:16],
            "edgecnn_release_src": str(archive), "edgecnn_release": name, "edgecnn_format": opts.format,
            "edgecnn_candidates": [{"format": a.format, "filename": a.filename} for a in chosen],
            "edgecnn_pip_args": opts.pip_args, "edgecnn_benchmark": opts.benchmark,
            "edgecnn_benchmark_runs": opts.benchmark_runs,
            "edgecnn_results_dir": str(Path(opts.results).resolve()),
        }
        return ansible.run_playbook("deploy.yml", inventory, extravars, check=opts.check, forks=opts.forks)


def rollback(opts: Options) -> list[ansible.Outcome]:
    """Switch every host back to its previous release."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-deploy-") as tmp:
        extravars = {**_common_vars(opts), "edgecnn_preview_url": opts.preview_url}  # the unit keeps the rest
        return ansible.run_playbook("rollback.yml", inventory_file(opts, Path(tmp)), extravars, check=opts.check,
                                    forks=opts.forks)


def remote_benchmark(opts: Options) -> list[ansible.Outcome]:
    """Benchmark the release deployed on every host; results in ``opts.results/<host>/``."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-deploy-") as tmp:
        extravars = {"edgecnn_threads": opts.threads, "edgecnn_benchmark_runs": opts.benchmark_runs,
                     "edgecnn_results_dir": str(Path(opts.results).resolve())}
        return ansible.run_playbook("remote_benchmark.yml", inventory_file(opts, Path(tmp)), extravars,
                                    forks=opts.forks)


def table(outcomes: list[ansible.Outcome], done: str | None = None, check: bool = False) -> str:
    """host, board, result, format, p50 latency, release: one row per host (``done``: the result of a host that
    succeeded, else deployed / no changes)."""
    rows = []
    for o in outcomes:
        r = o.result
        if not o.ok:
            state = "unreachable" if o.unreachable else "failed"
        else:
            state = done or (("would change" if check else "deployed") if o.changed else "no changes")
        p50 = r.get("p50_ms")
        rows.append([o.host, r.get("board") or "-", state, r.get("format") or "-",
                     f"{float(p50):.2f} ms" if p50 not in (None, "", "None") else "-", r.get("release") or "-"])
    return text_table(["host", "board", "result", "format", "p50 latency", "release"], rows)
