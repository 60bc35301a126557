"""`python -m gate write-context`: regenerate the committed GX context from gate.suites."""

import sys

from gate.context import write_context


def main(argv: list[str]) -> int:
    if argv[:1] != ["write-context"]:
        print("usage: python -m gate write-context", file=sys.stderr)
        return 2
    for name in write_context():
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
