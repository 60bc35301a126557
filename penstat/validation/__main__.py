"""`python -m penstat.validation write-context`: regenerate the committed GX context.

The suites are written from penstat.validation.suites (`make suites`)."""

import sys

from penstat.validation.gx_context import write_context


def main(argv: list[str]) -> int:
    if argv[:1] != ["write-context"]:
        print("usage: python -m penstat.validation write-context", file=sys.stderr)
        return 2
    for name in write_context():
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
