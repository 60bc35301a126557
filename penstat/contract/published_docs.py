"""The marts section of docs/published.md, generated from the published interface.

The marts, their keys and their columns in order come from penstat.contract.published
(the one source); each column's type and one-line meaning come from the dbt YAML of the
marts (dbt_project/models/marts/, contracts enforced). The section sits between two
marker comments in docs/published.md; everything outside them is written by hand.

The same descriptions become the table and column comments of each publication's
published.duckdb (`column_comment`, `table_comment`, with the unit `column_unit` finds;
penstat.publication.metadata), so the docs and the database say the same.

    python -m penstat.contract.published_docs           rewrite the section
    python -m penstat.contract.published_docs --check   exit 1 if it is out of date

tests/unit/contract/test_published_interface.py fails when the committed section differs
from what this module renders.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from penstat.contract.published import (
    INTERFACE_VERSION,
    MART_COLUMNS,
    MART_KEYS,
    PIPELINE_MART_COLUMNS,
    VALUE_FLAG_COLUMNS,
    flag_column,
)
from penstat.core.locations import DBT_PROJECT_DIR, REPO_ROOT

PUBLISHED_DOC = REPO_ROOT / "docs" / "published.md"
MARTS_YAML_DIR = DBT_PROJECT_DIR / "models" / "marts"
BEGIN = "<!-- BEGIN generated: marts (python -m penstat.contract.published_docs) -->"
END = "<!-- END generated: marts -->"

# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = ("e.g", "i.e", "cf", "etc", "vs")
_SENTENCE_END = re.compile(r"\.\s+")


@dataclass(frozen=True)
class ModelDoc:
    """What the dbt YAML says about one model."""

    name: str
    description: str
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (type, text)
    path: Path | None = None


# libyaml's loader where PyYAML was built with it: the same documents, ten times faster
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dbt_model_docs(directory: Path = MARTS_YAML_DIR) -> dict[str, ModelDoc]:
    """Every model described in the YAML files under `directory`, by name."""
    docs: dict[str, ModelDoc] = {}
    for path in sorted(directory.rglob("*.yml")):
        for model in (yaml.load(path.read_text(), Loader=_LOADER) or {}).get("models") or []:
            columns = {c["name"]: (str(c.get("data_type", "")), str(c.get("description", "")))
                       for c in model.get("columns") or []}
            for value in VALUE_FLAG_COLUMNS.get(model["name"], ()):
                columns.setdefault(flag_column(value), ("VARCHAR", flag_description(value)))
            docs[model["name"]] = ModelDoc(model["name"], str(model.get("description", "")),
                                           columns, path)
    return docs


def flag_description(column: str) -> str:
    """The meaning of `<column>_flag` (added by the publisher's disclosure step)."""
    return (f"Added. Eurostat flag of `{column}` alone: c confidential (withheld by "
            "disclosure control, docs/kpis.md), with the row's b (break in series), "
            "e (estimated), p (provisional) and any other letter of the row's `flag`; "
            "empty when none applies.")


def one_line(text: str) -> str:
    """The first sentence of a description, on one line (a leading 'Added.' dropped)."""
    text = " ".join(text.split())
    text = re.sub(r"^Added\.\s*", "", text)
    for match in _SENTENCE_END.finditer(text):
        before = text[:match.start()]
        if before.lower().endswith(_ABBREVIATIONS) or before.endswith("."):
            continue
        return before + "."
    return text


def grain(description: str) -> str | None:
    """The 'Grain: ...' sentence of a model description, if it has one."""
    text = " ".join(description.split())
    start = text.find("Grain:")
    return one_line(text[start:]) if start >= 0 else None


# The units of docs/published.md ("Units:"), as a column's description states them: the
# first that the description names is the column's unit. Shares are fractions 0..1,
# never percentages; "per 100" columns are ratios times 100.
UNITS: tuple[tuple[str, str], ...] = (
    ("share 0..1", "share 0..1 (0.25 = 25 %)"),
    ("per 100 places in use", "per 100 places in use"),
    ("per 100 places", "per 100 places"),
    ("per 100 detainees", "per 100 detainees"),
)


def column_unit(description: str) -> str | None:
    """The unit a column's description states (a key of UNITS, lower case), or None."""
    text = " ".join(description.split()).lower()
    found = [(text.find(phrase), -len(phrase), phrase) for phrase, _ in UNITS if phrase in text]
    return min(found)[2] if found else None  # the first named; the longest at one place


def column_comment(description: str) -> str:
    """A column's comment in published.duckdb: its whole description on one line (a
    leading 'Added.' dropped), led by its unit when the first sentence does not name it."""
    text = re.sub(r"^Added\.\s*", "", " ".join(description.split()))
    unit = column_unit(text)
    if unit and unit not in one_line(text).lower():
        text = f"Unit: {dict(UNITS)[unit]}. {text}"
    return text


def table_comment(description: str) -> str:
    """A mart's comment in published.duckdb: its whole description on one line."""
    return " ".join(description.split())


WIDTH = 88  # prose lines of the section are wrapped at this width; table rows are not


def _prose(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _render_mart(mart: str, columns: Sequence[str], key: Sequence[str],
                 doc: ModelDoc | None) -> list[str]:
    summary = one_line(doc.description) if doc else "(not described in the dbt YAML)"
    key_text = ", ".join(f"`{k}`" for k in key)
    grain_text = grain(doc.description) if doc else None
    lines = [f"#### `{mart}`", "", *_prose(summary), "",
             *_prose(f"Key: {key_text}." + (f" {grain_text}" if grain_text else "")),
             "", "| # | column | type | meaning |", "|---|---|---|---|"]
    for i, column in enumerate(columns, 1):
        type_, text = (doc.columns.get(column, ("", "")) if doc else ("", ""))
        meaning = one_line(text) if text else "(not described in the dbt YAML)"
        lines.append(f"| {i} | `{column}` | {type_} | {_cell(meaning)} |")
    lines.append("")
    return lines


def render_marts(columns: Mapping[str, Sequence[str]] = MART_COLUMNS,
                 keys: Mapping[str, Sequence[str]] = MART_KEYS,
                 docs: Mapping[str, ModelDoc] | None = None) -> str:
    """The generated section (without its markers): every mart, key and column in order."""
    docs = dbt_model_docs() if docs is None else docs
    pipeline = [m for m in columns if m in PIPELINE_MART_COLUMNS]
    comparison = [m for m in columns if m not in PIPELINE_MART_COLUMNS]
    lines = [*_prose(
        f"Interface version {INTERFACE_VERSION}: {len(columns)} marts "
        f"({len(pipeline)} built from the v1 feeds, {len(comparison)} for comparisons "
        "across sources and publishers). Columns are listed in published order; the "
        "publisher copies exactly these, and the publication gate rejects any other "
        "columns or order. Generated from `penstat/contract/published.py` (marts, keys, "
        "columns) and the dbt YAML of the marts (types, meanings): do not edit by hand."),
        "",
    ]
    for title, marts in (("Marts built from the v1 feeds", pipeline),
                         ("Comparison marts (real data; empty where a warehouse has no such "
                          "feed)", comparison)):
        if not marts:
            continue
        lines += [f"### {title}", ""]
        for mart in marts:
            lines += _render_mart(mart, columns[mart], keys.get(mart, ()), docs.get(mart))
    return "\n".join(lines).rstrip("\n") + "\n"


def generated_section(doc_text: str) -> str:
    """The text between the markers of `doc_text` (ValueError if they are missing)."""
    start, end = doc_text.find(BEGIN), doc_text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are missing or out of order")
    return doc_text[start + len(BEGIN):end].strip("\n") + "\n"


def splice(doc_text: str, section: str) -> str:
    """`doc_text` with the text between the markers replaced by `section`."""
    generated_section(doc_text)  # check the markers
    start, end = doc_text.find(BEGIN) + len(BEGIN), doc_text.find(END)
    return f"{doc_text[:start]}\n\n{section.strip(chr(10))}\n\n{doc_text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the section is out of date; change nothing")
    parser.add_argument("--doc", type=Path, default=PUBLISHED_DOC)
    args = parser.parse_args(argv)
    text = args.doc.read_text()
    updated = splice(text, render_marts())
    if args.check:
        if updated != text:
            print(f"{args.doc}: the generated marts section is out of date; run "
                  "python -m penstat.contract.published_docs", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        args.doc.write_text(updated)
        print(f"rewrote the marts section of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
