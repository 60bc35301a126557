"""Keyed hash (HMAC-SHA256) of person identifiers, applied before anything is written."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pyarrow as pa

from penstat.core.secrets import pseudonym_key

UDF_NAME = "penstat_pseudonymise"


def pseudonymise(value: str, key: bytes) -> str:
    """The pseudonym of one identifier: hex HMAC-SHA256 under the configured key."""
    return hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()


def register_udf(con: duckdb.DuckDBPyConnection, key: bytes | None = None) -> None:
    """Make penstat_pseudonymise(VARCHAR) available in SQL on this connection.

    The key is read once here; without a configured key this raises
    MissingPseudonymKey, so a person-level delivery is never read at all.
    """
    secret = key if key is not None else pseudonym_key()

    def _batch(values: pa.Array) -> pa.Array:
        return pa.array(
            [None if v is None else pseudonymise(v, secret) for v in values.to_pylist()],
            type=pa.string(),
        )

    con.create_function(
        UDF_NAME, _batch, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        type="arrow", null_handling="special", side_effects=False,
    )
