"""The Great Expectations gate: delivery suites before a merge, mart suites before publication."""

import logging

# GX logs every registry step at INFO; the gate reports its own results.
for _name in ("great_expectations", "great_expectations._docs_decorators"):
    logging.getLogger(_name).setLevel(logging.WARNING)
