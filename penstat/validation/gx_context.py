"""The file-based GX context under `expectations/` (committed) and how it is (re)written.

Everything a validation needs is declared in the context: the suites, one
pandas data source `penstat` with a dataframe asset per suite, a validation
definition and a checkpoint per suite. Validation results and Data Docs are
written under $PENSTAT_HOME/reports, via `${PENSTAT_HOME}` substitution in
great_expectations.yml, so the checkout can stay read-only.

The checkpoints carry no Data Docs action: a task builds the docs once, for
every result it produced (build_data_docs), instead of once per checkpoint,
and it builds the context once (get_context caches it per process).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import great_expectations as gx
from great_expectations.data_context import FileDataContext

from penstat.contract.layout import Paths
from penstat.contract.published import MART_KEYS
from penstat.core.locations import REPO_ROOT
from penstat.validation.data_docs import site_views
from penstat.validation.suites import all_suites

CONTEXT_ROOT = REPO_ROOT / "expectations"
DATASOURCE = "penstat"
BATCH = "whole_dataframe"
_STORE_PATHS = {
    "base_directory: uncommitted/validations/":
        "base_directory: ${PENSTAT_HOME}/reports/gx/validations/",
    "base_directory: uncommitted/data_docs/local_site/":
        "base_directory: ${PENSTAT_HOME}/reports/data_docs/",
}


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_NAMESPACE = uuid.UUID("5b1f6f0e-2d4c-4e8a-9a57-6d2a4f1e0c11")


def _stable_ids(folder: Path) -> None:
    """Replace GX's random ids by ids derived from their order of appearance.

    GX gives every suite, expectation, asset and definition a random UUID4, so
    each regeneration would rewrite every file. Mapping them, in a fixed
    traversal order, to name-based UUIDs keeps `make suites` diff-free when
    the suites did not change.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in
                   {".json", ".yml", ""} and p.name != ".gitignore")
    mapping: dict[str, str] = {}
    texts = {p: p.read_text() for p in files}
    for path in files:
        for found in _UUID.findall(texts[path]):
            if found not in mapping:
                mapping[found] = str(uuid.uuid5(_ID_NAMESPACE, f"penstat-gx-{len(mapping)}"))
    for path, text in texts.items():
        path.write_text(_UUID.sub(lambda m: mapping[m.group(0)], text))


def result_format(suite_name: str) -> dict:
    """Full results with row numbers (deliveries) or keys (marts) of failing rows.

    No `unexpected_index_query`: GX would render it in the Data Docs as markup-bearing
    template text (it quotes the key values), and penstat reads failing rows from
    `unexpected_index_list` anyway."""
    if suite_name.startswith("mart."):
        index = list(MART_KEYS[suite_name.removeprefix("mart.")])
    else:
        index = ["_row"]
    return {"result_format": "COMPLETE", "unexpected_index_column_names": index,
            "partial_unexpected_count": 5, "return_unexpected_index_query": False}


_CONTEXTS: dict[tuple[str, str], FileDataContext] = {}


def get_context(root: Path = CONTEXT_ROOT) -> FileDataContext:
    """The context of `root` for the current PENSTAT_HOME, built once per process."""
    os.environ.setdefault("PENSTAT_HOME", str(Paths.from_env().home))
    key = (str(root), os.environ["PENSTAT_HOME"])
    if key not in _CONTEXTS:
        _CONTEXTS[key] = gx.get_context(mode="file", project_root_dir=str(root))
    return _CONTEXTS[key]


def suite_file(suite_name: str, root: Path = CONTEXT_ROOT) -> Path:
    """A suite's committed JSON ('mart.mart_facility_daily': mart/mart_facility_daily.json)."""
    return root / "gx" / "expectations" / (suite_name.replace(".", "/") + ".json")


def build_data_docs(context: FileDataContext, results: list) -> None:
    """Render the Data Docs pages of these validation results (GateResult) and the index."""
    ids = [rid for result in results for rid in result.result_ids]
    if ids:
        context.build_data_docs(resource_identifiers=ids)


def _with_escaping_views(yml_text: str) -> str:
    """The Data Docs sites with the escaping views of penstat.validation.data_docs.

    Edited in the file, before GX loads it: GX's own variables would save the
    sites with `${PENSTAT_HOME}` already substituted."""
    from ruamel.yaml import YAML  # GX's own YAML library

    yaml = YAML()
    config = yaml.load(yml_text)
    views = site_views()
    for site in config["data_docs_sites"].values():
        site.setdefault("site_index_builder", {"class_name": "DefaultSiteIndexBuilder"})
        site["site_index_builder"]["view"] = views["site_index_builder"]["view"]
        site["site_section_builders"] = views["site_section_builders"]
    out = io.StringIO()
    yaml.dump(config, out)
    return out.getvalue()


def write_context(root: Path = CONTEXT_ROOT) -> list[str]:
    """Regenerate the committed context from penstat.validation.suites; returns the suite names."""
    os.environ.setdefault("PENSTAT_HOME", str(Paths.from_env().home))
    with tempfile.TemporaryDirectory() as tmp:
        gx.get_context(mode="file", project_root_dir=tmp)
        yml = Path(tmp) / "gx" / "great_expectations.yml"
        text = yml.read_text()
        for old, new in _STORE_PATHS.items():
            text = text.replace(old, new)
        yml.write_text(_with_escaping_views(text))
        ctx = gx.get_context(mode="file", project_root_dir=tmp)
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
        # Data Docs pages escape every value of a result (penstat.validation.data_docs)
        ctx.variables.save()
        source = ctx.data_sources.add_pandas(DATASOURCE)
        names = []
        for suite in all_suites():
            suite = ctx.suites.add(suite)
            batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe(
                BATCH)
            definition = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
            ctx.checkpoints.add(gx.Checkpoint(
                name=suite.name, validation_definitions=[definition], actions=[],
                result_format=result_format(suite.name)))
            names.append(suite.name)
        no_analytics = yml.read_text().replace("analytics_enabled:\n", "analytics_enabled: false\n")
        yml.write_text(no_analytics)
        shutil.rmtree(Path(tmp) / "gx" / "uncommitted", ignore_errors=True)
        _stable_ids(Path(tmp) / "gx")
        target = root / "gx"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(Path(tmp) / "gx", target, ignore=shutil.ignore_patterns("uncommitted"))
    return names
