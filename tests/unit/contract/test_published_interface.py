"""The published interface has one source (penstat.contract.published): the dbt YAML of
the marts, the gate's committed mart suites and docs/published.md must all agree with it.

Each comparison is a function returning the list of disagreements (empty = agree). They
are run on the real sources, and on sources perturbed in memory to show that each one
reports a disagreement, naming the mart and the column."""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml

from penstat.contract import published, published_docs
from penstat.contract.published import MART_COLUMNS, MART_KEYS, WAREHOUSE_MART_COLUMNS
from penstat.core.locations import DBT_PROJECT_DIR, GX_CONTEXT_DIR

MART_SUITE_DIR = GX_CONTEXT_DIR / "gx" / "expectations" / "mart"
PUBLISHED_SCHEMA = "marts"

Columns = Mapping[str, Sequence[str]]


# --- reading the sources --------------------------------------------------------------

def _folder_schemas(project: dict) -> dict[tuple[str, ...], str]:
    """`+schema` of each model folder in dbt_project.yml, by folder path under models/."""
    out: dict[tuple[str, ...], str] = {}

    def walk(node: object, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        if "+schema" in node:
            out[path] = str(node["+schema"])
        for key, value in node.items():
            if not key.startswith("+"):
                walk(value, (*path, key))

    for package in (project.get("models") or {}).values():
        walk(package, ())
    return out


def _schema_of(model: dict, yml: Path, models_dir: Path,
               folders: Mapping[tuple[str, ...], str]) -> str | None:
    """Where dbt builds a model: its own config, a config() in its SQL, else its folder's."""
    own = (model.get("config") or {}).get("schema")
    if own:
        return str(own)
    sql = yml.parent / f"{model['name']}.sql"
    if sql.is_file():
        found = re.search(r"config\([^)]*\bschema\s*=\s*['\"]([^'\"]+)['\"]", sql.read_text())
        if found:
            return found.group(1)
    parts = yml.parent.relative_to(models_dir).parts
    for depth in range(len(parts), -1, -1):  # the deepest folder config wins
        if parts[:depth] in folders:
            return folders[parts[:depth]]
    return None


def dbt_published_models(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, dict]:
    """The dbt YAML of every model built in schema `marts` and named mart_*, by name."""
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    models_dir = project_dir / (project.get("model-paths") or ["models"])[0]
    folders = _folder_schemas(project)
    out: dict[str, dict] = {}
    for yml in sorted(models_dir.rglob("*.yml")):
        for model in (yaml.safe_load(yml.read_text()) or {}).get("models") or []:
            if model["name"].startswith("mart_") \
                    and _schema_of(model, yml, models_dir, folders) == PUBLISHED_SCHEMA:
                out[model["name"]] = model
    return out


def committed_mart_suites(folder: Path = MART_SUITE_DIR) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


# --- the comparisons --------------------------------------------------------------------

def column_disagreements(mart: str, where: str, expected: Sequence[str],
                         actual: Sequence[str]) -> list[str]:
    """How `actual` differs from `expected` (missing, extra, order), naming each column."""
    out = [f"{mart}: {where} lacks column {c!r}" for c in expected if c not in actual]
    out += [f"{mart}: {where} has column {c!r} that is not in the interface"
            for c in actual if c not in expected]
    if not out and list(actual) != list(expected):
        i = next(i for i, (a, e) in enumerate(zip(actual, expected, strict=True)) if a != e)
        out.append(f"{mart}: {where} has column {actual[i]!r} at position {i + 1}, the "
                   f"interface has {expected[i]!r} (order differs)")
    return out


def _unique_key(tests: Sequence[object]) -> list[str] | None:
    for test in tests or ():
        if isinstance(test, dict) and "unique_combination_of_columns" in test:
            spec = test["unique_combination_of_columns"]
            spec = spec.get("arguments", spec)
            return list(spec["combination_of_columns"])
    return None


def dbt_disagreements(columns: Columns, keys: Columns, models: Mapping[str, dict]) -> list[str]:
    """The dbt YAML of the published marts against the interface (less the value flags
    `<column>_flag`, which the publisher's disclosure step adds after dbt)."""
    added = {m: {published.flag_column(c) for c in cols}
             for m, cols in published.VALUE_FLAG_COLUMNS.items()}
    columns = {m: [c for c in cols if c not in added.get(m, ())] for m, cols in columns.items()}
    out = [f"{m}: in MART_COLUMNS but no model in schema marts in the dbt YAML"
           for m in columns if m not in models]
    out += [f"{m}: a mart_* model in schema marts in the dbt YAML but not in MART_COLUMNS"
            for m in models if m not in columns]
    for mart in (m for m in columns if m in models):
        model = models[mart]
        actual = [c["name"] for c in model.get("columns") or []]
        out += column_disagreements(mart, "dbt YAML", columns[mart], actual)
        if not (model.get("config") or {}).get("contract", {}).get("enforced"):
            out.append(f"{mart}: dbt YAML does not enforce the model's contract")
        key = _unique_key(model.get("data_tests") or model.get("tests") or [])
        if key != list(keys.get(mart, ())):
            out.append(f"{mart}: dbt YAML unique key {key} differs from MART_KEYS "
                       f"{list(keys.get(mart, ()))}")
    return out


def suite_disagreements(columns: Columns, keys: Columns, suites: Mapping[str, dict]) -> list[str]:
    """The committed GX mart suites against the interface."""
    out = [f"{m}: no committed mart suite {MART_SUITE_DIR.name}/{m}.json"
           for m in columns if m not in suites]
    out += [f"{m}: committed mart suite for a mart not in MART_COLUMNS"
            for m in suites if m not in columns]
    for mart in (m for m in columns if m in suites):
        by_type: dict[str, list[dict]] = {}
        for e in suites[mart].get("expectations", []):
            by_type.setdefault(e["type"], []).append(e["kwargs"])
        ordered = by_type.get("expect_table_columns_to_match_ordered_list", [])
        if len(ordered) != 1:
            out.append(f"{mart}: suite has {len(ordered)} "
                       "expect_table_columns_to_match_ordered_list (expected 1)")
        for kwargs in ordered:
            out += column_disagreements(mart, "GX suite column_list", columns[mart],
                                        kwargs["column_list"])
        key = list(keys.get(mart, ()))
        if len(key) > 1:
            found = [k["column_list"] for k in by_type.get("expect_compound_columns_to_be_unique",
                                                             [])]
        else:
            found = [[k["column"]] for k in by_type.get("expect_column_values_to_be_unique", [])]
        if key not in found:
            out.append(f"{mart}: suite has no unique key {key} (MART_KEYS); it has {found}")
        out += [f"{mart}: suite also has unique key {f} not in MART_KEYS"
                for f in found if f != key]
    return out


def docs_disagreements(doc_text: str, rendered: str) -> list[str]:
    """The generated section of docs/published.md against what the generator renders."""
    try:
        committed = published_docs.generated_section(doc_text)
    except ValueError as exc:
        return [f"docs/published.md: {exc}"]
    if committed == rendered:
        return []
    diff = difflib.unified_diff(committed.splitlines(), rendered.splitlines(),
                                "docs/published.md (committed)", "rendered now", lineterm="")
    return ["docs/published.md: the marts section is out of date (run python -m "
            "penstat.contract.published_docs):", *diff]


# --- the real sources agree -------------------------------------------------------------

@pytest.fixture(scope="module")
def models() -> dict[str, dict]:
    return dbt_published_models()


@pytest.fixture(scope="module")
def suites() -> dict[str, dict]:
    return committed_mart_suites()


@pytest.fixture(scope="module")
def doc_text() -> str:
    return published_docs.PUBLISHED_DOC.read_text()


def test_the_interface_has_its_marts_each_with_a_key_among_its_columns():
    # ten marts of interface v1 and its comparisons, plus the regional roll-up and
    # per-facility pooled reoffending
    assert len(MART_COLUMNS) == 12
    assert {"mart_regional_monthly", "mart_facility_recidivism"} <= set(MART_COLUMNS)
    assert set(MART_KEYS) == set(MART_COLUMNS)
    for mart, key in MART_KEYS.items():
        assert set(key) <= set(MART_COLUMNS[mart]), mart
        assert len(set(MART_COLUMNS[mart])) == len(MART_COLUMNS[mart]), mart


def test_the_dbt_yaml_of_the_marts_agrees_with_the_interface(models):
    assert dbt_disagreements(WAREHOUSE_MART_COLUMNS, MART_KEYS, models) == []


def test_the_committed_mart_suites_agree_with_the_interface(suites):
    assert suite_disagreements(MART_COLUMNS, MART_KEYS, suites) == []


def test_the_generated_section_of_published_md_is_up_to_date(doc_text):
    disagreements = docs_disagreements(doc_text, published_docs.render_marts())
    assert disagreements == [], "\n".join(disagreements)


def test_published_md_lists_every_mart_key_and_column_in_order(doc_text):
    section = published_docs.generated_section(doc_text)
    for mart, columns in MART_COLUMNS.items():
        block = section.split(f"#### `{mart}`", 1)[1].split("#### ", 1)[0]
        listed = re.findall(r"^\| \d+ \| `([a-z0-9_]+)` \|", block, flags=re.M)
        assert listed == list(columns), mart
        assert "Key: " + ", ".join(f"`{k}`" for k in MART_KEYS[mart]) + "." in block, mart
        assert "(not described in the dbt YAML)" not in block, mart


def test_published_md_says_what_the_marts_hold_about_flags(doc_text):
    """One `flag` column per row, and `<column>_flag` exactly for the values disclosure
    control can withhold (VALUE_FLAG_COLUMNS); a mart without `flag` is named."""
    assert "(or `<kpi>_flag`)" not in doc_text
    value_flags = {published.flag_column(c) for cols in published.VALUE_FLAG_COLUMNS.values()
                   for c in cols}
    assert not [c for cols in MART_COLUMNS.values() for c in cols
                if c.endswith("_flag") and c not in value_flags]
    for mart, values in published.VALUE_FLAG_COLUMNS.items():
        assert set(values) <= set(MART_COLUMNS[mart]), mart
    flags = next(p for p in doc_text.split("\n\n") if p.startswith("Flags:"))
    assert "one `flag` column" in flags and "`<column>_flag`" in flags
    assert [m for m, cols in MART_COLUMNS.items() if "flag" not in cols] == re.findall(
        r"except `(mart_[a-z_]+)`", flags)


def test_the_publisher_and_the_gate_read_the_one_source():
    from penstat.publication import publish
    from penstat.validation import suites

    assert publish.MART_COLUMNS is published.MART_COLUMNS
    assert publish.MART_KEYS is published.MART_KEYS
    assert suites.MART_COLUMNS is published.MART_COLUMNS
    assert suites.MART_KEYS is published.MART_KEYS


# --- each comparison can fail -----------------------------------------------------------

def _without(columns: Columns, mart: str, column: str) -> dict[str, tuple[str, ...]]:
    out = {m: tuple(c) for m, c in columns.items()}
    out[mart] = tuple(c for c in out[mart] if c != column)
    return out


def test_a_column_dropped_from_the_interface_is_reported_everywhere(models, suites, doc_text,
                                                                    monkeypatch):
    dropped = _without(MART_COLUMNS, "mart_national_monthly", "census_days")
    monkeypatch.setattr(published, "MART_COLUMNS", dropped)

    for disagreements in (dbt_disagreements(published.MART_COLUMNS, MART_KEYS, models),
                          suite_disagreements(published.MART_COLUMNS, MART_KEYS, suites)):
        assert len(disagreements) == 1, disagreements
        assert "mart_national_monthly" in disagreements[0]
        assert "'census_days'" in disagreements[0]
    docs = docs_disagreements(doc_text, published_docs.render_marts(published.MART_COLUMNS))
    assert docs and any(line.startswith("-") and "`census_days`" in line for line in docs)


def test_a_column_order_change_is_reported(models, suites):
    columns = dict(MART_COLUMNS)
    a, b, *rest = columns["mart_facility_daily"]
    columns["mart_facility_daily"] = (b, a, *rest)
    for disagreements in (dbt_disagreements(columns, MART_KEYS, models),
                          suite_disagreements(columns, MART_KEYS, suites)):
        assert disagreements == [disagreements[0]]
        assert "mart_facility_daily" in disagreements[0] and "order" in disagreements[0]
        assert "'census_date'" in disagreements[0]


def test_a_mart_added_to_the_interface_is_reported_missing(models, suites):
    columns = {**MART_COLUMNS, "mart_new": ("a", "flag")}
    keys = {**MART_KEYS, "mart_new": ("a",)}
    assert dbt_disagreements(columns, keys, models) == [
        "mart_new: in MART_COLUMNS but no model in schema marts in the dbt YAML"]
    assert suite_disagreements(columns, keys, suites) == [
        "mart_new: no committed mart suite mart/mart_new.json"]


def test_a_key_change_is_reported(models, suites):
    keys = {**MART_KEYS, "mart_facility_monthly": ("facility_id",)}
    for disagreements in (dbt_disagreements(MART_COLUMNS, keys, models),
                          suite_disagreements(MART_COLUMNS, keys, suites)):
        assert disagreements, keys
        assert all("mart_facility_monthly" in d for d in disagreements)
        assert any("['facility_id']" in d for d in disagreements)


def test_dbt_yaml_that_disagrees_is_reported(models):
    changed = copy.deepcopy(dict(models))
    del changed["mart_delivery_status"]
    changed["mart_extra"] = {"name": "mart_extra", "columns": []}
    changed["mart_facility_snapshot"]["columns"].append({"name": "surprise"})
    assert sorted(dbt_disagreements(MART_COLUMNS, MART_KEYS, changed)) == sorted([
        "mart_delivery_status: in MART_COLUMNS but no model in schema marts in the dbt YAML",
        "mart_extra: a mart_* model in schema marts in the dbt YAML but not in MART_COLUMNS",
        "mart_facility_snapshot: dbt YAML has column 'surprise' that is not in the interface",
    ])


def test_only_mart_models_built_in_schema_marts_count(tmp_path):
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "p", "model-paths": ["models"],
        "models": {"p": {"staging": {"+schema": "staging"}, "marts": {"+schema": "marts"}}},
    }))
    for folder, names in (("staging", ["mart_lookalike"]),
                          ("marts", ["mart_a", "not_a_mart", "mart_moved"]),
                          ("marts/sub", ["mart_b"])):
        (tmp_path / "models" / folder).mkdir(parents=True)
        (tmp_path / "models" / folder / "_m.yml").write_text(yaml.safe_dump({"models": [
            {"name": n, **({"config": {"schema": "exports"}} if n == "mart_moved" else {})}
            for n in names]}))
    assert sorted(dbt_published_models(tmp_path)) == ["mart_a", "mart_b"]


def test_a_suite_that_disagrees_is_reported(suites):
    changed = copy.deepcopy(dict(suites))
    for e in changed["mart_recidivism_cohort"]["expectations"]:
        if e["type"] == "expect_table_columns_to_match_ordered_list":
            e["kwargs"]["column_list"].remove("ci_high")
    changed["mart_scale_class_facts"]["expectations"] = [
        e for e in changed["mart_scale_class_facts"]["expectations"]
        if e["type"] != "expect_compound_columns_to_be_unique"]
    disagreements = suite_disagreements(MART_COLUMNS, MART_KEYS, changed)
    assert len(disagreements) == 2, disagreements
    assert "mart_recidivism_cohort" in disagreements[0] and "'ci_high'" in disagreements[0]
    assert "mart_scale_class_facts" in disagreements[1] and "unique key" in disagreements[1]


def test_a_hand_edit_of_the_generated_section_is_reported(doc_text):
    rendered = published_docs.render_marts()
    edited = doc_text.replace("| `return_to_prison_rate` |", "| `return_rate` |")
    assert edited != doc_text
    disagreements = docs_disagreements(edited, rendered)
    assert any("`return_rate`" in line for line in disagreements)
    assert docs_disagreements(doc_text.replace(published_docs.END, ""), rendered)


def test_a_changed_dbt_description_changes_the_rendered_section(doc_text):
    docs = published_docs.dbt_model_docs()
    model = docs["mart_facility_daily"]
    docs["mart_facility_daily"] = published_docs.ModelDoc(
        model.name, model.description,
        {**model.columns, "density": ("double", "Inmates per 1000 places.")}, model.path)
    disagreements = docs_disagreements(doc_text, published_docs.render_marts(docs=docs))
    assert any(line.startswith("+") and "per 1000 places" in line for line in disagreements)


def test_the_generator_rewrites_only_between_the_markers(tmp_path, doc_text):
    doc = tmp_path / "published.md"
    stale = published_docs.splice(doc_text, "stale\n")
    doc.write_text(stale)
    assert published_docs.main(["--check", "--doc", str(doc)]) == 1
    assert doc.read_text() == stale
    assert published_docs.main(["--doc", str(doc)]) == 0
    assert doc.read_text() == doc_text
    assert published_docs.main(["--check", "--doc", str(doc)]) == 0


@pytest.mark.parametrize(("text", "first"), [
    ("Facility code (e.g. NL-0042). More.", "Facility code (e.g. NL-0042)."),
    ("Added. Share 0..1 of x. Authority: DJI.", "Share 0..1 of x."),
    ("PRIS_ACT_CAP (persons held), ...", "PRIS_ACT_CAP (persons held), ..."),
    ("One\n  line. Two", "One line."),
])
def test_one_line_takes_the_first_sentence(text, first):
    assert published_docs.one_line(text) == first
