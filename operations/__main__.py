"""`python -m operations up|down|status|demo|rebuild` (see the Makefile and README)."""

from __future__ import annotations

import argparse
import json
import sys

from ingestion.settings import Paths
from operations.local_airflow import Stack, health


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m operations")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local Airflow stack and wait until healthy")
    up.add_argument("--port", type=int, default=None)
    sub.add_parser("down", help="stop every process `up` started")
    sub.add_parser("status", help="show the stack's processes and health")
    demo = sub.add_parser("demo", help="run the pipeline end to end on synthetic deliveries")
    demo.add_argument("--scale", type=float, default=1.0)
    demo.add_argument("--seed", type=int, default=42)
    sub.add_parser("rebuild", help="full rebuild of every model from the raw layer, then "
                   "gate and publish (through Airflow when the stack is up)")
    args = parser.parse_args(argv)

    stack = Stack(Paths.from_env())
    if args.command == "up":
        state = stack.up(port=args.port)
        print(f"Airflow is up: {state['api']} (PENSTAT_HOME={state['home']})")
        print(f"Drop deliveries into {stack.paths.inbox}/<feed>/ and ring _READY.")
    elif args.command == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif args.command == "status":
        state = stack.read_state()
        if not state:
            print("not running")
            return 1
        print(json.dumps({"state": state, "health": health(state["api"])}, indent=2))
    elif args.command == "demo":
        from operations.demo import run_demo

        return run_demo(scale=args.scale, seed=args.seed)
    elif args.command == "rebuild":
        from operations.rebuild import rebuild

        result = rebuild(stack.paths)
        if result["via"] == "airflow":
            print(f"queued penstat_build run {result['dag_run_id']} with full_refresh; "
                  "penstat_publish follows")
        else:
            publication = result["publication"]
            state = "unchanged" if publication["unchanged"] else "published"
            print(f"full rebuild in {result['build']['elapsed_seconds']} s; "
                  f"{state}: {publication['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
