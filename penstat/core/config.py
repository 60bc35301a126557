"""penstat's configuration: thresholds and bounds, in layers.

    config/penstat.toml          the base: every key penstat knows, with its default and reason
    PENSTAT_CONFIG               another base file instead (same keys)
    PENSTAT_CONFIG_OVERLAYS      overlay files, separated by os.pathsep, applied in order
                                 (e.g. config/real.toml for `penstat real`)

An overlay may only change keys the base defines: an unknown section or key (a typo
such as `max_populaton_over_operational`) is an error naming the file, not a silently
ignored value. Every value is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from penstat.core.locations import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "penstat.toml"
CONFIG_ENV = "PENSTAT_CONFIG"
OVERLAYS_ENV = "PENSTAT_CONFIG_OVERLAYS"


class ConfigError(ValueError):
    """A configuration file is unreadable or names a key the base does not define."""


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"configuration file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path}: not valid TOML ({exc})") from None


def apply_overlay(values: dict[str, Any], overlay: dict[str, Any], source: Path) -> None:
    """Update `values` with `overlay`; refuse sections and keys `values` does not have."""
    for section, items in overlay.items():
        if section not in values:
            raise ConfigError(f"configuration overlay {source}: unknown section [{section}] "
                              f"(known: {', '.join(sorted(values))})")
        if not isinstance(items, dict):
            raise ConfigError(f"configuration overlay {source}: {section} = {items!r} must be "
                              f"a table [{section}] of keys")
        for key, value in items.items():
            if key not in values[section]:
                raise ConfigError(f"configuration overlay {source}: unknown key "
                                  f"[{section}] {key} (known: "
                                  f"{', '.join(sorted(values[section]))})")
            if not _same_kind(values[section][key], value):
                raise ConfigError(f"configuration overlay {source}: [{section}] {key} = "
                                  f"{value!r} is not of the type of the default "
                                  f"{values[section][key]!r}")
            values[section][key] = value


def _same_kind(default: Any, value: Any) -> bool:
    """An overlay keeps a key's type; an integer may stand where a decimal is expected."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return type(value) is type(default)


def overlays_from_env() -> list[Path]:
    raw = os.environ.get(OVERLAYS_ENV, "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


@dataclass(frozen=True)
class Config:
    values: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None, overlays: Iterable[Path] | None = None) -> Config:
        """The base file with the overlays on top (both default to the environment's)."""
        path = path or Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
        values = _read(path)
        for overlay in overlays_from_env() if overlays is None else overlays:
            apply_overlay(values, _read(Path(overlay)), Path(overlay))
        return cls(values)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def duckdb_memory_limit(self) -> str:
        """DuckDB's memory_limit for penstat's own connections and dbt's ([resources])."""
        return str(self.values.get("resources", {}).get("duckdb_memory_limit", "2GB"))

    @cached_property
    def dbt_vars(self) -> dict[str, Any]:
        """Thresholds handed to dbt as vars, so SQL never holds the literals."""
        out: dict[str, Any] = {}
        for section in ("classification", "overcrowding", "disclosure", "recidivism"):
            for k, v in self.values.get(section, {}).items():
                out[f"{section}_{k}"] = v
        return out
