"""docs/contract/manifest.schema.json: committed as generated, valid for every manifest a
correct sender writes, and in agreement with read_manifest on good and bad manifests."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from penstat.contract import manifest_schema
from penstat.contract.feeds import FEEDS, MANIFEST
from penstat.contract.manifest import REQUIRED_FIELDS, read_manifest
from penstat.contract.problems import DeliveryRejected
from penstat.senders.delivery import csv_rows, write_delivery
from penstat.senders.synthetic import generate

SHA = "0" * 63 + "a"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = manifest_schema.manifest_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("inbox"), scale=0.05, seed=1)


@pytest.fixture
def base(tmp_path: Path) -> dict[str, Any]:
    """A manifest as the contract's writer makes it: occupancy with both files."""
    folder = write_delivery(
        tmp_path / "writer", "occupancy", "dji-occ-2026-11-27",
        {"occupancy.csv": csv_rows(["facility_id", "census_date"], [["NL-0042", "2026-11-27"]]),
         "regime.csv": csv_rows(["facility_id", "month"], [["NL-0042", "2026-11"]])},
        sender="DJI", created_at="2026-11-28T02:00:00Z", period=("2026-11-27", "2026-11-27"),
        dialect={"delimiter": ",", "decimal": ".", "encoding": "utf-8"}, ring=False)
    return json.loads((folder / MANIFEST).read_text())


def errors(validator: jsonschema.Draft202012Validator, manifest: object) -> list[str]:
    return [e.message for e in validator.iter_errors(manifest)]


def parse(tmp_path: Path, manifest: Any, inbox_feed: str | None = None,
          folder_name: str | None = None, **kw: Any):
    """read_manifest on `manifest` written as `<feed>/<delivery_id>/manifest.json`."""
    feed = inbox_feed or manifest.get("feed", "occupancy")
    name = folder_name or str(manifest.get("delivery_id") or "no-id")
    folder = tmp_path / "inbox" / feed / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return read_manifest(folder, feed, **kw)


def changed(base: dict[str, Any], path: str, value: Any = ...) -> dict[str, Any]:
    """A copy of `base` with `path` ('a.b', 'files.0.rows') set to `value` (... = removed)."""
    out = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return out


# --- the committed file -------------------------------------------------------------------

def test_the_committed_schema_is_the_generated_one():
    committed = manifest_schema.SCHEMA_FILE.read_text()
    assert committed == manifest_schema.schema_text(), (
        "docs/contract/manifest.schema.json is out of date: run "
        "python -m penstat.contract.manifest_schema")
    assert manifest_schema.main(["--check"]) == 0


def test_main_writes_the_file_and_check_notices_a_stale_one(tmp_path):
    target = tmp_path / "manifest.schema.json"
    assert manifest_schema.main(["--check", str(target)]) == 1
    assert manifest_schema.main([str(target)]) == 0
    assert json.loads(target.read_text()) == manifest_schema.manifest_schema()
    target.write_text(target.read_text().replace('"minItems": 1', '"minItems": 0'))
    assert manifest_schema.main(["--check", str(target)]) == 1


def test_feeds_md_tells_senders_about_the_schema():
    feeds_md = (manifest_schema.SCHEMA_FILE.parent / "feeds.md").read_text()
    assert "check-jsonschema --schemafile docs/contract/manifest.schema.json" in feeds_md


# --- good manifests: the schema and the parser both accept --------------------------------

def test_every_synthetic_manifest_is_valid(validator, synthetic):
    assert {f.parent.name for f in synthetic} == {"facility_register", "occupancy",
                                                  "staffing", "recidivism"}
    for folder in synthetic:
        manifest = json.loads((folder / MANIFEST).read_text())
        assert errors(validator, manifest) == [], folder
        read_manifest(folder, folder.parent.name)


def test_check_jsonschema_accepts_a_synthetic_manifest(synthetic):
    """The command feeds.md gives senders works on a real manifest, and fails a bad one."""
    cli = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("check-jsonschema is not installed")
    schema = str(manifest_schema.SCHEMA_FILE)
    good = subprocess.run([cli, "--schemafile", schema, str(synthetic[0] / MANIFEST)],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad_file = synthetic[0].parent.parent / "bad-manifest.json"
    bad = json.loads((synthetic[0] / MANIFEST).read_text())
    bad["files"][0]["rows"] = -1
    bad_file.write_text(json.dumps(bad))
    assert subprocess.run([cli, "--schemafile", schema, str(bad_file)],
                          capture_output=True, text=True).returncode == 1


GOOD = {
    "written by the contract's writer": [],
    "no dialect": [("dialect", ...)],
    "dialect null": [("dialect", None)],
    "dialect empty": [("dialect", {})],
    "European dialect": [("dialect", {"delimiter": ";", "decimal": ",",
                                      "encoding": "Windows-1252"})],
    "tab, upper-case UTF-8": [("dialect", {"delimiter": "\t", "encoding": "UTF-8"})],
    "decimal comma with a pipe": [("dialect", {"delimiter": "|", "decimal": ","})],
    "no period": [("period", ...)],
    "period null": [("period", None)],
    "period start only": [("period", {"start": "2026-11-01"})],
    "period ends empty": [("period", {"start": "", "end": None})],
    "replaces an earlier delivery": [("replaces", "dji-occ-2026-11-26")],
    "no replaces": [("replaces", ...)],
    "unknown extra field": [("comment", "ignored by the warehouse")],
    "created_at with an offset": [("created_at", "2026-11-28T03:00:00+01:00")],
    "created_at without a zone": [("created_at", "2026-11-28 02:00")],
    "created_at with a fraction": [("created_at", "2026-11-28T02:00:00.250Z")],
    "created_at a date": [("created_at", "2026-11-28")],
    "a v1 feed sent as contract 2": [("contract_version", "2")],
    "Parquet, upper-case extension": [("files.1.name", "regime.PARQUET")],
    "optional file absent": [("files.1", ...)],
    "zero rows": [("files.0.rows", 0)],
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_manifests_pass_the_schema_and_the_parser(case, base, validator, tmp_path):
    manifest = base
    for path, value in GOOD[case]:
        manifest = changed(manifest, path, value)
    assert errors(validator, manifest) == []
    parse(tmp_path, manifest)


def test_a_v2_feed_passes_both(validator, tmp_path):
    manifest = {"contract_version": "2", "feed": "national_reference", "delivery_id": "es-1",
                "sender": "Eurostat", "created_at": "2026-01-15T00:00:00Z",
                "files": [{"name": f"{f.stem}.csv", "sha256": SHA, "rows": 3}
                          for f in FEEDS["national_reference"].files]}
    assert errors(validator, manifest) == []
    parse(tmp_path, manifest)


# --- bad manifests: the schema and the parser both reject ---------------------------------

BAD = {
    "unknown feed": ([("feed", "prisons")], "manifest_feed"),
    "unsupported contract version": ([("contract_version", "4")], "contract_version"),
    "contract version as a number": ([("contract_version", 4)], "contract_version"),
    "empty sender": ([("sender", "")], "manifest_missing_field"),
    "sender null": ([("sender", None)], "manifest_missing_field"),
    "sha256 upper case": ([("files.0.sha256", SHA.upper())], "manifest_files"),
    "sha256 too short": ([("files.0.sha256", SHA[:-1])], "manifest_files"),
    "sha256 not hex": ([("files.0.sha256", "g" * 64)], "manifest_files"),
    "negative rows": ([("files.0.rows", -1)], "manifest_files"),
    "rows as text": ([("files.0.rows", "12")], "manifest_files"),
    "rows as a boolean": ([("files.0.rows", True)], "manifest_files"),
    "rows with a fraction": ([("files.0.rows", 1.5)], "manifest_files"),
    "file entry without rows": ([("files.0.rows", ...)], "manifest_files"),
    "no files": ([("files", [])], "manifest_files"),
    "files not a list": ([("files", {"name": "occupancy.csv"})], "manifest_files"),
    "file name with a path": ([("files.0.name", "../occupancy.csv")], "file_name"),
    "file name with ..": ([("files.0.name", "occupancy..csv")], "file_name"),
    "spreadsheet": ([("files.0.name", "occupancy.xlsx")], "file_name"),
    "file not of the feed": ([("files.1.name", "staffing.csv")], "unknown_file"),
    "required file missing": ([("files.0", ...)], "missing_file"),
    "file listed twice": ([("files.1.name", "occupancy.parquet")], "manifest_files"),
    "unknown delimiter": ([("dialect.delimiter", ":")], "manifest_dialect"),
    "delimiter null": ([("dialect.delimiter", None)], "manifest_dialect"),
    "unknown decimal": ([("dialect.decimal", "·")], "manifest_dialect"),
    "decimal comma, delimiter comma": ([("dialect.decimal", ",")], "manifest_dialect"),
    "decimal comma, default delimiter": ([("dialect", {"decimal": ","})], "manifest_dialect"),
    "unknown encoding": ([("dialect.encoding", "utf-16")], "manifest_dialect"),
    "dialect not an object": ([("dialect", "excel")], "manifest_dialect"),
    "period not an object": ([("period", "2026-11")], "manifest_period"),
    "period start not a date": ([("period.start", "2026-11")], "manifest_date"),
    "period end month 13": ([("period.end", "2026-13-01")], "manifest_date"),
    "created_at not a timestamp": ([("created_at", "yesterday")], "manifest_timestamp"),
    "created_at hour 24": ([("created_at", "2026-11-28T24:00:00Z")], "manifest_timestamp"),
    "replaces a bad id": ([("replaces", "../other")], "replaces"),
    "replaces empty": ([("replaces", "")], "replaces"),
}
BAD.update({f"missing {field}": ([(field, ...)], "manifest_missing_field")
            for field in REQUIRED_FIELDS})


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifests_fail_the_schema_and_the_parser(case, base, validator, tmp_path):
    edits, rule = BAD[case]
    manifest = base
    for path, value in edits:
        manifest = changed(manifest, path, value)
    assert errors(validator, manifest), f"the schema accepts: {case}"
    with pytest.raises(DeliveryRejected) as rejected:
        parse(tmp_path, manifest, inbox_feed="occupancy", folder_name=base["delivery_id"])
    assert rejected.value.problems[0].rule == rule


@pytest.mark.parametrize("delivery_id", ["-leading-hyphen", "has space", "a" * 101, "é-1",
                                         "semi;colon"])
def test_bad_delivery_ids_fail_the_schema_and_the_parser(delivery_id, base, validator,
                                                         tmp_path):
    manifest = changed(base, "delivery_id", delivery_id)
    assert errors(validator, manifest)
    with pytest.raises(DeliveryRejected) as rejected:
        parse(tmp_path, manifest)  # in a folder of that name: only the pattern is wrong
    assert rejected.value.problems[0].rule == "delivery_id"


def test_a_v2_feed_declared_as_contract_1_fails_both(validator, tmp_path):
    manifest = {"contract_version": "1", "feed": "national_reference", "delivery_id": "es-1",
                "sender": "Eurostat", "created_at": "2026-01-15T00:00:00Z",
                "files": [{"name": f"{f.stem}.csv", "sha256": SHA, "rows": 3}
                          for f in FEEDS["national_reference"].files]}
    assert errors(validator, manifest)
    with pytest.raises(DeliveryRejected) as rejected:
        parse(tmp_path, manifest)
    assert rejected.value.problems[0].rule == "contract_version"


def test_a_manifest_that_is_not_an_object_fails_both(validator, tmp_path):
    assert errors(validator, ["not", "an", "object"])
    folder = tmp_path / "occupancy" / "d-1"
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text("[]")
    with pytest.raises(DeliveryRejected):
        read_manifest(folder, "occupancy")


# --- what the schema says it cannot express: only the parser rejects ----------------------

PARSER_ONLY = {
    "delivery_id is not the folder's name": ([], {"folder_name": "another-name"}, "delivery_id"),
    "period ends before it starts": ([("period", {"start": "2026-11-27", "end": "2026-11-01"})],
                                     {}, "manifest_period"),
    "a date that does not exist": ([("period.end", "2026-02-30")], {}, "manifest_date"),
    "replaces itself": ([("replaces", "dji-occ-2026-11-27")], {}, "replaces"),
    "rows written as 1.0": ([("files.0.rows", 1.0)], {}, "manifest_files"),
    "more rows than the warehouse allows": ([("files.0.rows", 11)], {"max_rows": 10},
                                            "declared_rows_implausible"),
}


@pytest.mark.parametrize("case", sorted(PARSER_ONLY))
def test_rules_the_schema_lists_as_not_expressible_are_the_parsers(case, base, validator,
                                                                   tmp_path):
    edits, kw, rule = PARSER_ONLY[case]
    manifest = base
    for path, value in edits:
        manifest = changed(manifest, path, value)
    assert errors(validator, manifest) == []
    with pytest.raises(DeliveryRejected) as rejected:
        parse(tmp_path, manifest, **kw)
    assert rejected.value.problems[0].rule == rule


def test_the_schema_description_lists_what_it_cannot_express():
    description = manifest_schema.manifest_schema()["description"]
    for rule in manifest_schema.NOT_EXPRESSIBLE:
        assert rule in description


TOLERATED = {
    "contract_version as a number": [("contract_version", 1)],
    "sender as a number": [("sender", 42)],
    "created_at in ISO 8601 basic format": [("created_at", "20261128T020000Z")],
    "period start in ISO 8601 basic format": [("period.start", "20261127")],
}


@pytest.mark.parametrize("case", sorted(TOLERATED))
def test_the_schema_keeps_to_the_documented_form_where_the_parser_tolerates_more(
        case, base, validator, tmp_path):
    """The one direction in which the schema is stricter than the parser, and said so."""
    manifest = base
    for path, value in TOLERATED[case]:
        manifest = changed(manifest, path, value)
    assert errors(validator, manifest)
    parse(tmp_path, manifest)
    assert manifest_schema.TOLERATED in manifest_schema.manifest_schema()["description"]
