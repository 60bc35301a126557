"""`python -m penstat ...`: the same as the `penstat` console script."""

import sys

from penstat.cli.main import main

sys.exit(main(sys.argv[1:]))
