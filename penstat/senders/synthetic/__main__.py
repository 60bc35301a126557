"""Command line: write synthetic deliveries into an inbox.

    python -m penstat.senders.synthetic generate --inbox PATH --scale 1 --seed 42
        [--split year|month|day] [--start 2023-01-01 --years 3 | --until yesterday]
        [--feeds occupancy staffing]
    python -m penstat.senders.synthetic next-day --inbox PATH --scale 1 --seed 42 --date 2026-01-01
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from penstat.senders.synthetic.periods import SPLITS, history_until
from penstat.senders.synthetic.sender import ALL_FEEDS, generate, next_day, summarize
from penstat.senders.synthetic.system import DEFAULT_SEED, DEFAULT_START, DEFAULT_YEARS


def _system_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inbox", type=Path, required=True, help="inbox root (<inbox>/<feed>/...)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size: 1 = about 130 facilities (minimum 0.05)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START,
                        help="first census_date (default %(default)s)")
    parser.add_argument("--years", type=int, default=DEFAULT_YEARS,
                        help="years of daily occupancy (default %(default)s)")
    parser.add_argument("--until", type=_until, default=None,
                        help="last census_date instead of --years: a date, or `yesterday` "
                             "(UTC) so that no feed is late today")


def _until(text: str) -> date:
    return history_until() if text == "yesterday" else date.fromisoformat(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m penstat.senders.synthetic",
                                     description="Write synthetic penstat deliveries.")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="register, occupancy, staffing and recidivism")
    _system_arguments(gen)
    gen.add_argument("--split", choices=SPLITS, default="year",
                     help="one occupancy/staffing delivery per year, month or day")
    gen.add_argument("--feeds", nargs="+", choices=ALL_FEEDS, default=list(ALL_FEEDS))
    nxt = commands.add_parser("next-day", help="one more day of occupancy")
    _system_arguments(nxt)
    nxt.add_argument("--date", type=date.fromisoformat, required=True, dest="day",
                     help="census_date to deliver, e.g. 2026-01-01")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = {"scale": args.scale, "seed": args.seed, "start": args.start, "years": args.years,
              "until": args.until}
    if args.command == "generate":
        folders = generate(args.inbox, split=args.split, feeds=args.feeds, **system)
    else:
        folders = [next_day(args.inbox, day=args.day, **system)]
    print(f"wrote {len(folders)} deliveries into {args.inbox}")
    for feed, (deliveries, rows) in summarize(folders).items():
        files = ", ".join(f"{stem} {n:,} rows" for stem, n in rows.items())
        print(f"  {feed}: {deliveries} deliver{'y' if deliveries == 1 else 'ies'}; {files}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
