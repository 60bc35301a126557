"""Writing a delivery into the inbox exactly as the contract says (docs: feeds.md).

Order on disk: data files first (each under a temporary name, then renamed),
then manifest.json (temporary file + os.replace, so it appears whole), then the
feed's `_READY` doorbell. A reader that sees manifest.json therefore sees
complete data files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from penstat.contract.feeds import CONTRACT_VERSIONS, DOORBELL, FEEDS, MANIFEST
from penstat.core.files import sha256_bytes

CONTRACT_VERSION = CONTRACT_VERSIONS[0]  # v1 feeds are sent as contract v1
DEFAULT_DIALECT = {"delimiter": ",", "decimal": ".", "encoding": "utf-8"}
MAX_DECIMALS = 4


def write_delivery(
    inbox: Path,
    feed: str,
    delivery_id: str,
    files: Mapping[str, bytes],
    *,
    sender: str,
    created_at: str,
    period: tuple[str, str] | None,
    replaces: str | None = None,
    dialect: dict | None = None,
    ring: bool = True,
    manifest_overrides: dict | None = None,
    contract_version: str | None = None,
) -> Path:
    """Write one delivery folder `<inbox>/<feed>/<delivery_id>/` and return it.

    `delivery_id` is not checked against the contract's pattern (tests build
    invalid deliveries on purpose); only names that would escape the inbox
    are refused. An existing manifest is never overwritten. `contract_version`
    overrides the default (the version that introduced the feed).
    """
    _refuse_unsafe_name(feed, "feed")
    _refuse_unsafe_name(delivery_id, "delivery_id")
    folder = Path(inbox) / feed / delivery_id
    if (folder / MANIFEST).exists():
        raise FileExistsError(f"{folder / MANIFEST} exists: a delivery is never rewritten")
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, data in files.items():
        _refuse_unsafe_name(name, "file name")
        _write_atomically(folder / name, data)
        rows = count_rows(name, data, dialect)
        entries.append({"name": name, "sha256": sha256_bytes(data), "rows": rows})
    manifest: dict[str, Any] = {
        # as given (v3: a sender that leaves unknown census cells empty), else the
        # version that introduced the feed (v2 feeds: "2"); unknown feeds (tests): v1
        "contract_version": contract_version or (
            FEEDS[feed].contract_version if feed in FEEDS else CONTRACT_VERSION),
        "feed": feed,
        "delivery_id": delivery_id,
        "sender": sender,
        "created_at": created_at,
        "period": None if period is None else {"start": period[0], "end": period[1]},
        "replaces": replaces,
    }
    if dialect is not None:
        manifest["dialect"] = dialect
    manifest["files"] = entries
    manifest.update(manifest_overrides or {})
    _write_atomically(folder / MANIFEST, manifest_bytes(manifest))
    if ring:
        ring_doorbell(Path(inbox) / feed)
    return folder


def ring_doorbell(feed_folder: Path) -> Path:
    """Touch `<inbox>/<feed>/_READY`: 'something new is here'."""
    feed_folder.mkdir(parents=True, exist_ok=True)
    bell = feed_folder / DOORBELL
    bell.touch()
    return bell


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def count_rows(name: str, data: bytes, dialect: Mapping[str, str] | None = None) -> int:
    """Data records in a file, header excluded (csv module: quoted newlines are one record)."""
    if name.lower().endswith(".parquet"):
        return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    spec = {**DEFAULT_DIALECT, **(dialect or {})}
    encoding = spec["encoding"]
    if encoding.replace("-", "").replace("_", "").lower() == "utf8":
        encoding = "utf-8-sig"  # a UTF-8 BOM is allowed
    text = data.decode(encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=spec["delimiter"])
    records = sum(1 for record in reader if record)
    return max(records - 1, 0)


def csv_bytes(
    df_or_rows: pd.DataFrame | Iterable[Mapping[str, Any]] | Iterable[Sequence[Any]],
    columns: Sequence[str],
    *,
    delimiter: str = ",",
    decimal: str = ".",
    encoding: str = "utf-8",
) -> bytes:
    """CSV as the contract wants it: header, '\\n' line ends, '' for missing, ISO dates,
    'true'/'false', at most 4 decimals, no index. Defaults give the contract's
    default dialect; the keywords build a declared European dialect for tests."""
    frame = df_or_rows if isinstance(df_or_rows, pd.DataFrame) else pd.DataFrame(list(df_or_rows))
    if not isinstance(df_or_rows, pd.DataFrame) and len(frame.columns) and all(
        isinstance(c, int) for c in frame.columns
    ):
        frame.columns = list(columns)[: len(frame.columns)]
    frame = frame.reindex(columns=list(columns))
    out = pd.DataFrame({c: _format_column(frame[c], decimal) for c in columns})
    text = out.to_csv(index=False, sep=delimiter, lineterminator="\n", na_rep="")
    return text.encode(encoding)


def csv_rows(header: Sequence[str], rows: Iterable[Sequence[Any]], *, delimiter: str = ",",
             decimal: str = ".", encoding: str = "utf-8") -> bytes:
    """The same contract CSV as csv_bytes, from rows of Python values (no pandas)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if (text := _format_scalar(v, decimal)) is None else text
                         for v in row])
    return out.getvalue().encode(encoding)


def _format_column(values: pd.Series, decimal: str) -> pd.Series:
    """Render one column as text; missing stays missing (written as '')."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").astype(object)
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype("string").astype(object)
    if pd.api.types.is_float_dtype(values):
        return _format_decimals(values, decimal)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values  # already text: written as is, missing as ''
    return values.map(lambda v: _format_scalar(v, decimal)).astype(object)


def _format_scalar(value: Any, decimal: str) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return _format_decimal(float(value), decimal)
    return str(value)


def _format_decimals(values: pd.Series, decimal: str) -> pd.Series:
    """Vectorised: shortest text of each value rounded to MAX_DECIMALS ('12.5', '3')."""
    rounded = values.astype(float).round(MAX_DECIMALS) + 0.0  # + 0.0: no '-0.0'
    text = pd.Series(rounded.to_numpy().astype(str), index=values.index)
    text = text.str.replace(r"\.0$", "", regex=True)
    if decimal != ".":
        text = text.str.replace(".", decimal, regex=False)
    return text.where(rounded.notna(), None).astype(object)


def _format_decimal(value: float, decimal: str) -> str | None:
    if value is None or np.isnan(value):
        return None
    text = repr(round(float(value), MAX_DECIMALS) + 0.0)  # + 0.0: no '-0.0'
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", decimal)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _refuse_unsafe_name(name: str, what: str) -> None:
    if not name or name in {".", ".."} or any(ch in name for ch in "/\\\0"):
        raise ValueError(f"{what} {name!r} would not stay inside its folder")
