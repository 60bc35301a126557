"""What is wrong with a delivery, said so a sender holding only the contract can fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One broken rule. `row` is the data row (1 = first row after the header; 0 = the
    header itself); `file`, `row` and `column` are None where they do not apply (a
    manifest field is named in `column`, with `file` = manifest.json)."""

    rule: str
    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None  # never set for personal-data columns
    rows_affected: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def one_line(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.row is not None:
            where.append("header row" if self.row == 0 else f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        place = ", ".join(where)
        more = ""
        if self.rows_affected and self.rows_affected > 1:
            more = f" ({self.rows_affected} rows break this rule; the first is shown)"
        value = f" (value {self.value!r})" if self.value is not None else ""
        prefix = f"{place}: " if place else ""
        return f"{prefix}[{self.rule}] {self.message}{value}{more}"


class DeliveryRejected(Exception):
    """The delivery breaks the contract: it goes to quarantine whole."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("a rejection needs at least one problem")
        self.problems = problems
        super().__init__(problems[0].one_line())
