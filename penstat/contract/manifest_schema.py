"""A JSON Schema (draft 2020-12) of manifest.json, derived from the contract in code.

Senders validate their manifest with any JSON Schema validator before delivering. The
schema is built from penstat.contract.feeds (feeds, files, patterns, contract versions)
and penstat.contract.manifest (required fields, dialects, the sha256 rule), so it
changes when they do. It states the contract as manifest.py reads it: it accepts every
manifest written the way the contract documents that the parser accepts, and rejects
what the parser rejects wherever JSON Schema can say so. The rules it cannot express
are listed in its description.

    python -m penstat.contract.manifest_schema           write docs/contract/manifest.schema.json
    python -m penstat.contract.manifest_schema -         print it
    python -m penstat.contract.manifest_schema --check   exit 1 if the committed file differs

tests/unit/contract/test_manifest_schema.py checks that the committed file is this
module's output and that the schema and read_manifest agree on good and bad manifests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from penstat.contract.feeds import (
    CONTRACT_VERSIONS,
    DELIVERY_ID_PATTERN,
    FEEDS,
    FILE_NAME_PATTERN,
    MANIFEST,
)
from penstat.contract.manifest import (
    DATA_EXTENSIONS,
    DECIMALS,
    DELIMITERS,
    ENCODINGS,
    REQUIRED_FIELDS,
    SHA256_PATTERN,
    Dialect,
)
from penstat.core.locations import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "contract" / "manifest.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# ISO 8601 as the contract writes it (feeds.md; the parser's messages say the same): a
# calendar date YYYY-MM-DD, and for created_at optionally a time (T, t or a space, then
# HH[:MM[:SS[.fraction]]]) and a UTC offset (Z or +HH[:MM]); no offset = UTC.
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = r"([01][0-9]|2[0-3])(:[0-5][0-9](:[0-5][0-9]([.,][0-9]+)?)?)?"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
DATE_PATTERN = f"^{_DATE}$"
TIMESTAMP_PATTERN = f"^{_DATE}([Tt ]{_TIME}{_OFFSET}?)?$"

# The parser reads some values with str() and Python's ISO 8601 reader, which accept more
# than the contract documents; the schema keeps to the documented forms.
TOLERATED = (
    "Where the warehouse is more lenient than the contract documents (it reads a number "
    "given for a text field as its text, and ISO 8601 basic format or week dates), the "
    "schema keeps to the documented form.")

_SPECIAL = frozenset(".^$*+?()[]{}|\\/")

NOT_EXPRESSIBLE = (
    "delivery_id must equal the name of the delivery folder, and feed the inbox folder "
    "it is in",
    "period.end must not be before period.start",
    "dates must exist (the schema checks months 01-12 and days 01-31 only)",
    "replaces must name an earlier delivery of the same feed, not the delivery itself",
    "each file's sha256 and rows must match the data file (rows: data records, header "
    "excluded)",
    "rows must be a JSON integer written without a fraction (JSON Schema counts 1.0 as an "
    "integer; the parser does not) and at most the receiving warehouse's "
    "validation.max_rows_per_file (default 100000000)",
)


def _literal(text: str) -> str:
    """`text` as a regular expression, portable to ECMA-262 (re.escape would escape '-',
    which ECMA-262 in unicode mode refuses outside a character class)."""
    return "".join(f"\\{c}" if c in _SPECIAL else c for c in text)


def _case_insensitive(text: str) -> str:
    """A regular expression matching `text` in any letter case (JSON Schema has no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else _literal(c) for c in text)


def _extension_pattern() -> str:
    return "(" + "|".join(_case_insensitive(ext.lstrip(".")) for ext in DATA_EXTENSIONS) + ")"


def _file_of(stem: str) -> str:
    return f"^{_literal(stem)}\\.{_extension_pattern()}$"


def _effective(prop: str, value: str, default: str) -> dict[str, Any]:
    """The dialect's `prop` is `value`: given so, or absent with that default."""
    given = {"required": [prop], "properties": {prop: {"const": value}}}
    if value != default:
        return given
    return {"anyOf": [given, {"not": {"required": [prop]}}]}


def _dialect() -> dict[str, Any]:
    default = Dialect()
    # "type": "object": without it, `not` would refuse a null dialect (a non-object
    # passes every "required" and "properties" vacuously).
    clashes = [{"type": "object",
                "allOf": [_effective("delimiter", c, default.delimiter),
                          _effective("decimal", c, default.decimal)]}
               for c in DELIMITERS if c in DECIMALS]
    return {
        "description": "How CSV files are written; optional (ignored for Parquet). Default: "
                       f"delimiter {default.delimiter!r}, decimal {default.decimal!r}, "
                       f"encoding {default.encoding!r} (a UTF-8 BOM is allowed). The "
                       "decimal mark and the delimiter must differ, defaults included.",
        "type": ["object", "null"],
        "properties": {
            "delimiter": {"type": "string", "enum": list(DELIMITERS)},
            "decimal": {"type": "string", "enum": list(DECIMALS)},
            "encoding": {
                "description": f"One of {sorted(ENCODINGS)}, in any letter case.",
                "type": "string",
                "pattern": "^(" + "|".join(_case_insensitive(e) for e in ENCODINGS) + ")$",
            },
        },
        **({"not": {"anyOf": clashes}} if clashes else {}),
    }


def _files() -> dict[str, Any]:
    return {
        "description": "The data files of the delivery, each listed once.",
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["name", "sha256", "rows"],
            "properties": {
                "name": {
                    "description": "A plain file name: one of the feed's files, ending in "
                                   f"{' or '.join(DATA_EXTENSIONS)} (any letter case).",
                    "type": "string",
                    "allOf": [{"pattern": FILE_NAME_PATTERN.pattern},
                              {"pattern": f"\\.{_extension_pattern()}$"},
                              {"not": {"pattern": r"\.\."}}],
                },
                "sha256": {"description": "SHA-256 of the file's bytes, lowercase hex.",
                           "type": "string", "pattern": SHA256_PATTERN.pattern},
                "rows": {"description": "Data records in the file, header excluded.",
                         "type": "integer", "minimum": 0},
            },
        },
    }


def _per_feed(name: str) -> dict[str, Any]:
    """What depends on the feed: its contract versions, its files, the required ones."""
    feed = FEEDS[name]
    stems = [f.stem for f in feed.files]
    names = "^(" + "|".join(_literal(s) for s in stems) + f")\\.{_extension_pattern()}$"
    once = [{"contains": {"required": ["name"],
                          "properties": {"name": {"pattern": _file_of(stem)}}},
             "minContains": 1 if stem in feed.required_files else 0, "maxContains": 1}
            for stem in stems]
    then: dict[str, Any] = {"properties": {
        "files": {"items": {"properties": {"name": {"pattern": names}}}, "allOf": once},
    }}
    versions = [v for v in CONTRACT_VERSIONS if int(v) >= int(feed.contract_version)]
    if versions != list(CONTRACT_VERSIONS):
        then["properties"]["contract_version"] = {"enum": versions}
    return {"if": {"required": ["feed"], "properties": {"feed": {"const": name}}},
            "then": then}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of manifest.json for the contract versions this warehouse accepts."""
    return {
        "$schema": DRAFT,
        "title": f"penstat delivery {MANIFEST}",
        "description": (
            f"{MANIFEST} of a delivery, contract versions {', '.join(CONTRACT_VERSIONS)} "
            "(docs/contract/feeds.md, feeds-v2.md). Generated from penstat/contract/feeds.py "
            "and manifest.py by python -m penstat.contract.manifest_schema: do not edit. "
            "Fields not named here are ignored by the warehouse. " + TOLERATED + " Not "
            "expressible in JSON Schema, checked by the warehouse only: "
            + "; ".join(NOT_EXPRESSIBLE) + "."),
        "type": "object",
        "required": list(REQUIRED_FIELDS),
        "properties": {
            "contract_version": {
                "description": "The contract version, as a string. A feed exists from the "
                               "version that introduced it on.",
                "type": "string", "enum": list(CONTRACT_VERSIONS)},
            "feed": {"description": "The feed; the same as the inbox folder.",
                     "type": "string", "enum": list(FEEDS)},
            "delivery_id": {"description": "Unique per feed; the delivery folder's name.",
                            "type": "string", "pattern": DELIVERY_ID_PATTERN.pattern},
            "sender": {"description": "Who sends the delivery.",
                       "type": "string", "minLength": 1},
            "created_at": {
                "description": "When the delivery was made (for recidivism: the extraction "
                               "date), ISO 8601, e.g. 2026-11-28T02:00:00Z; without an "
                               "offset it is read as UTC.",
                "type": "string", "pattern": TIMESTAMP_PATTERN},
            "period": {
                "description": "The period the data describe, ISO dates YYYY-MM-DD; optional, "
                               "as is each end (null or empty = not given).",
                "type": ["object", "null"],
                "properties": {end: {"type": ["string", "null"],
                                     "pattern": f"^({_DATE})?$"}
                               for end in ("start", "end")},
            },
            "replaces": {"description": "null, or the delivery_id of an earlier delivery of "
                                        "the same feed that this one corrects.",
                         "type": ["string", "null"], "pattern": DELIVERY_ID_PATTERN.pattern},
            "dialect": _dialect(),
            "files": _files(),
        },
        "allOf": [_per_feed(name) for name in FEEDS],
    }


def schema_text() -> str:
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(SCHEMA_FILE),
                        help=f"where to write it ('-' = standard output; default {SCHEMA_FILE})")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the file differs from the schema; write nothing")
    args = parser.parse_args(argv)
    text = schema_text()
    if args.path == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.path)
    if args.check:
        if not path.is_file() or path.read_text() != text:
            print(f"{path} is out of date: run python -m penstat.contract.manifest_schema",
                  file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
