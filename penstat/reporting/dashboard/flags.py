"""Eurostat flags on published values, and which values are withheld.

A publication flags its values with Eurostat's letters (docs/published.md). A value
carries the letters of its own `<column>_flag` column when the mart has one, else those
of the row's `flag` column. A value is withheld (shown as `c`, never blank or zero) when
it is empty and its flags contain `c`; an empty value without `c` is not available
(shown as Eurostat's `:`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Eurostat's flag letters (Eurostat, "Flags and special values", EU statistics code list
# OBS_FLAG), as penstat uses them.
FLAG_MEANINGS: dict[str, str] = {
    "b": "break in time series",
    "c": "confidential: withheld by disclosure control",
    "e": "estimated",
    "m": "missing",
    "p": "provisional",
    "r": "revised",
    "u": "low reliability",
}
ROW_FLAG = "flag"
FLAG_SUFFIX = "_flag"
NOT_AVAILABLE = ":"  # Eurostat's sign for a value that is not available


def flag_column(column: str, columns: tuple[str, ...] | list[str]) -> str | None:
    """The column holding the flags of `column`: `<column>_flag`, else the row `flag`."""
    own = f"{column}{FLAG_SUFFIX}"
    if own in columns:
        return own
    return ROW_FLAG if ROW_FLAG in columns else None


def is_flag_column(column: str) -> bool:
    return column == ROW_FLAG or column.endswith(FLAG_SUFFIX)


def describe(flags: str) -> str:
    """'c: confidential ...; p: provisional' for the letters of `flags` (unknown letters
    are named as such, never dropped)."""
    return "; ".join(f"{f}: {FLAG_MEANINGS.get(f, 'flag of the publisher')}"
                     for f in dict.fromkeys(flags))


@dataclass(frozen=True)
class Cell:
    """One published value with the flags that apply to it."""

    value: object
    flags: str = ""

    @property
    def withheld(self) -> bool:
        return self.value is None and "c" in self.flags

    @property
    def missing(self) -> bool:
        return self.value is None and "c" not in self.flags
