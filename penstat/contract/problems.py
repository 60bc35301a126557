"""What is wrong with a delivery, said so a sender holding only the contract can fix it.

Problems quote what a sender sent (a header entry, a value, a file name), and their
text goes to log lines, `_REJECTED.txt`, `_REJECTED.json` and alerts. A sender must
not be able to start a log line of their own (a newline followed by
`ERROR penstat.alerts ...`), hide text with terminal escapes or reorder it with
bidirectional controls: `log_safe` escapes every character that is not printable,
and `Problem.one_line` is log-safe as a whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def log_safe(text: object) -> str:
    """`text` on one line, as `repr` would show its characters but without quotes.

    Every character that `str.isprintable` rejects is written as its Python escape:
    control characters (newline, carriage return, tab, ESC ...), line and paragraph
    separators (U+2028, U+2029), format characters such as bidirectional overrides
    and zero-width spaces, lone surrogates (undecodable bytes of a file name), and
    unassigned or private-use code points. Printable text, including any script,
    is kept as it is. A backslash stays a backslash."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _utf8_safe(value: object) -> object:
    """A string that UTF-8 can encode: lone surrogates become their escapes."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_escape(ch) if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


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
        """The fields that are set, for JSON. Text is kept as sent (JSON escapes control
        characters itself), except lone surrogates, which no UTF-8 file can hold."""
        return {k: _utf8_safe(v) for k, v in asdict(self).items() if v is not None}

    def one_line(self) -> str:
        """The problem on one log-safe line: nothing in it can start another line."""
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
        return log_safe(f"{prefix}[{self.rule}] {self.message}{value}{more}")


class DeliveryRejected(Exception):
    """The delivery breaks the contract: it goes to quarantine whole."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("a rejection needs at least one problem")
        self.problems = problems
        super().__init__(problems[0].one_line())
