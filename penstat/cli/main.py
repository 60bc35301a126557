"""`penstat` (also `python -m penstat`): run and operate penstat from a shell.

Every step runs the same task bodies as the Airflow DAGs (penstat.orchestration.tasks),
in the foreground, on $PENSTAT_HOME:

    penstat up | down | status       the local Airflow stack (make up / down / status);
                                     PENSTAT_EXECUTOR=celery: PostgreSQL, Redis, Celery workers
    penstat demo [--scale --seed]    the whole pipeline on synthetic data, through Airflow
    penstat real [--home --data]     five real public data sets through the pipeline
    penstat rebuild                  full rebuild, gate, publish (through Airflow if it is up)
    penstat ingest FEED [FEED ...]   what penstat_ingest_<feed> does ("all": every feed)
    penstat build [--full-refresh]   what penstat_build does
    penstat publish                  what penstat_publish does
    penstat dashboard [--port]       serve the current publication's dashboard (localhost)

Exit codes (also in `penstat --help`):

    0  done
    1  the step failed: nothing was changed that should not have been (the dbt build
       failed, the publication gate failed, an unexpected error)
    2  usage: an unknown command or option, a configuration error, missing input
    3  done, but the operator must look: a delivery was quarantined (ingest), a feed is
       late (build), the stack is not running (status)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import traceback
from pathlib import Path

from penstat.cli.demo import run_demo
from penstat.cli.real import DEFAULT_HOME, print_run, run_real
from penstat.contract.feeds import FEEDS
from penstat.contract.layout import Paths
from penstat.core.config import ConfigError
from penstat.orchestration import tasks
from penstat.orchestration.celery_stack import CeleryStack
from penstat.orchestration.local_airflow import HEALTH_COMPONENTS, health
from penstat.orchestration.rebuild import rebuild
from penstat.orchestration.stacks import EXECUTORS, recorded_executor, recorded_stack, stack_for
from penstat.senders.real import data_dir

DONE, FAILED, USAGE, ATTENTION = 0, 1, 2, 3
EXIT_CODES = f"""exit codes:
  {DONE}  done
  {FAILED}  the step failed (dbt build, publication gate, unexpected error)
  {USAGE}  usage, configuration or missing input
  {ATTENTION}  done, but look: a delivery quarantined, a feed late, the stack not running"""
# Ingest the register first: the other v1 feeds check facilities against it.
FEED_ORDER = ("facility_register", *(f for f in FEEDS if f != "facility_register"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="penstat", description="penstat: the prison-statistics warehouse pipeline. "
        "Works on $PENSTAT_HOME (default .penstat/ in the checkout).",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="debug logging, and the traceback of a failure")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start the local Airflow stack and wait until it is healthy")
    up.add_argument("--port", type=int, default=None, help="api-server port (default: a free one)")
    up.add_argument("--executor", choices=EXECUTORS, default=None,
                    help="local: SQLite + LocalExecutor (default); celery: PostgreSQL, Redis "
                         "and Celery workers (default: $PENSTAT_EXECUTOR)")
    up.add_argument("--workers", type=int, default=None,
                    help="Celery workers to start (default: $PENSTAT_WORKERS or 2)")
    sub.add_parser("down", help="stop every process `up` started, and nothing else")
    sub.add_parser("status", help="the stack's processes and health (exit 3: not running)")
    demo = sub.add_parser("demo", help="the pipeline end to end on synthetic deliveries, "
                          "through Airflow, in a fresh PENSTAT_HOME")
    demo.add_argument("--scale", type=float, default=1.0)
    demo.add_argument("--seed", type=int, default=42)
    real = sub.add_parser("real", help="five real public data sets through the pipeline")
    real.add_argument("--home", type=Path, default=None,
                      help="PENSTAT_HOME for the run (wiped first; default .penstat/real)")
    real.add_argument("--data", type=Path, default=None,
                      help="folder of the real data sets (default $PENSTAT_REAL_DATA or "
                           "data/real)")
    sub.add_parser("rebuild", help="full rebuild of every model from the raw layer, then gate "
                   "and publish (queued through Airflow when the stack is up)")
    ingest = sub.add_parser("ingest", help="ingest the pending deliveries of feeds "
                            "(penstat_ingest_<feed>); exit 3 if one was quarantined")
    ingest.add_argument("feeds", nargs="+", metavar="FEED",
                        help=f"one of {', '.join(FEEDS)}, or all")
    build = sub.add_parser("build", help="dbt build of what new deliveries touch, then the "
                           "lateness check (penstat_build); exit 3 if a feed is late")
    build.add_argument("--full-refresh", action="store_true",
                       help="rebuild every model from the raw layer")
    build.add_argument("--as-of-date", default=None,
                       help="date lateness and maturity are measured at (default: today)")
    sub.add_parser("publish", help="gate the built marts and switch published/current "
                   "(penstat_publish); exit 1 if the gate fails")
    dash = sub.add_parser("dashboard", help="serve the current publication's dashboard on "
                          "127.0.0.1 (drawn first, as penstat_dashboard does, if it has none)")
    dash.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    dash.add_argument("--rebuild", action="store_true",
                      help="draw the dashboard again even if the publication has one")
    dash.add_argument("--build-only", action="store_true",
                      help="draw the dashboard if missing, print where it is, do not serve")
    return p


def _ingest(feeds: list[str]) -> int:
    unknown = sorted(set(feeds) - set(FEEDS) - {"all"})
    if unknown:
        print(f"unknown feed(s) {', '.join(unknown)}; feeds: {', '.join(FEEDS)}",
              file=sys.stderr)
        return USAGE
    wanted = FEED_ORDER if "all" in feeds else [f for f in FEED_ORDER if f in feeds]
    outcomes = [o for feed in wanted for o in tasks.ingest(feed)]
    for o in outcomes:
        print(f"{o['feed']}/{o['delivery_id']}: {o['outcome']}"
              + (f" ({o['rows']} rows)" if o["outcome"] == "loaded" else "")
              + (f" - {o['reason']}" if o["reason"] else ""))
    if not outcomes:
        print("no pending delivery")
    report = tasks.rejection_report(outcomes)
    if report:
        print(report, file=sys.stderr)
        return ATTENTION
    return DONE


def _build(full_refresh: bool, as_of_date: str | None) -> int:
    result = tasks.build_marts(full_refresh=full_refresh, as_of_date=as_of_date)
    print(f"dbt build {result['build_id']} ({result['mode']}) up to delivery "
          f"{result['max_delivery_seq']} in {result['elapsed_seconds']} s")
    report = tasks.lateness_report(tasks.late_feeds())
    if report:
        print(report, file=sys.stderr)
        return ATTENTION
    return DONE


def _publish() -> int:
    result = tasks.gate_and_publish()
    state = "unchanged, stays current" if result["unchanged"] else "published"
    print(f"{result['version']}: {state}")
    return DONE


def _up(args: argparse.Namespace, paths: Paths) -> int:
    stack = stack_for(paths, args.executor, args.workers)
    recorded = recorded_executor(paths)
    wanted = "celery" if isinstance(stack, CeleryStack) else "local"
    if recorded and recorded != wanted and recorded_stack(paths).running():
        print(f"a {recorded} stack is running for this PENSTAT_HOME: `penstat down` first",
              file=sys.stderr)
        return USAGE
    state = stack.up(port=args.port)
    print(f"Airflow is up: {state['api']} (PENSTAT_HOME={state['home']}, executor {wanted})")
    if isinstance(stack, CeleryStack):
        for key, worker in state["workers"].items():
            print(f"  {key}: {worker['name']} (pid {state['pids'][key]})")
        for name, service in state["services"].items():
            print(f"  {name}: 127.0.0.1:{service['port']} (pid {service['pid']})")
    print("The API listens on 127.0.0.1 only, with no login: every local user is an "
          "Airflow admin (SECURITY.md).")
    print(f"Drop deliveries into {stack.paths.inbox}/<feed>/ and ring _READY.")
    return DONE


def _celery_status(stack: CeleryStack) -> int:
    status = stack.status()
    print(json.dumps(status, indent=2))
    if not status.get("running"):
        return ATTENTION
    return DONE if status["healthy"] else ATTENTION


def _dashboard(port: int, rebuild: bool, build_only: bool) -> int:
    from penstat.reporting.dashboard.serve import address, static_server

    paths = Paths.from_env()
    if not (paths.current_publication / "published.duckdb").is_file():
        print(f"no publication in {paths.published}: run `make demo` or `penstat publish` "
              "first", file=sys.stderr)
        return USAGE
    try:
        result = tasks.build_dashboard(rebuild=rebuild)
    except PermissionError as denied:
        if build_only:
            raise
        # a reader who may not write into the publication: draw it for this session only
        from penstat.reporting.dashboard import write_dashboard

        scratch = Path(tempfile.mkdtemp(prefix="penstat-dashboard-"))
        index = write_dashboard(paths.current_publication.resolve(), scratch)
        print(f"cannot add a dashboard to the publication ({denied}); drawn for this "
              f"session into {scratch}", file=sys.stderr)
        result = {"version": paths.current_publication.resolve().name, "index": str(index),
                  "built": True, "seconds": 0.0}
    folder = Path(result["index"]).parent
    print(f"dashboard of publication {result['version']}: {result['index']}"
          + (f" (drawn in {result['seconds']} s)" if result["built"] else ""), flush=True)
    if build_only:
        return DONE
    server = static_server(folder, port)
    print(f"serving {folder} at {address(server)}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return DONE


def run(args: argparse.Namespace) -> int:
    paths = Paths.from_env()
    if args.command == "up":
        return _up(args, paths)
    stack = recorded_stack(paths)
    if args.command == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif args.command == "status" and isinstance(stack, CeleryStack):
        return _celery_status(stack)
    elif args.command == "status":
        state = stack.running()
        if not state:
            print("not running" + (" (stale pid file: some recorded processes have exited; "
                                   "`penstat down` cleans up)" if stack.read_state() else ""))
            return ATTENTION
        status = health(state["api"])
        print(json.dumps({"state": state, "health": status}, indent=2))
        if not status or any(status.get(c, {}).get("status") != "healthy"
                             for c in HEALTH_COMPONENTS):
            return ATTENTION
    elif args.command == "demo":
        return run_demo(scale=args.scale, seed=args.seed)
    elif args.command == "real":
        data = args.data or data_dir()
        if not data.is_dir():
            print(f"real data sets not found in {data} (set PENSTAT_REAL_DATA)", file=sys.stderr)
            return USAGE
        print_run(run_real(args.home or DEFAULT_HOME, data))
    elif args.command == "rebuild":
        result = rebuild(stack.paths)
        if result["via"] == "airflow":
            print(f"queued penstat_build run {result['dag_run_id']} with full_refresh; "
                  "penstat_publish follows")
        else:
            publication = result["publication"]
            state = "unchanged" if publication["unchanged"] else "published"
            print(f"full rebuild in {result['build']['elapsed_seconds']} s; "
                  f"{state}: {publication['version']}")
    elif args.command == "ingest":
        return _ingest(args.feeds)
    elif args.command == "build":
        return _build(args.full_refresh, args.as_of_date)
    elif args.command == "publish":
        return _publish()
    elif args.command == "dashboard":
        return _dashboard(args.port, args.rebuild, args.build_only)
    return DONE


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except ConfigError as exc:
        print(f"penstat: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:  # one paragraph and the exit code; --verbose adds the traceback
        if args.verbose:
            traceback.print_exc()
        print(f"penstat {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILED
