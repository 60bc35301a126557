"""Layered configuration: a base file, overlays on top, unknown keys and wrong types refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from penstat.core.config import DEFAULT_CONFIG, OVERLAYS_ENV, Config, ConfigError
from penstat.core.locations import CONFIG_DIR


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_base_alone_is_the_default_configuration(monkeypatch) -> None:
    monkeypatch.delenv(OVERLAYS_ENV, raising=False)
    config = Config.load()
    assert config.get("validation", "max_population_over_operational") == 2.0
    assert Config.load(DEFAULT_CONFIG, overlays=[]).values == config.values


def test_the_real_overlay_changes_one_bound_and_nothing_else() -> None:
    base = Config.load(overlays=[])
    real = Config.load(overlays=[CONFIG_DIR / "real.toml"])
    assert real.get("validation", "max_population_over_operational") == 6.0
    changed = {(s, k) for s in base.values for k in base.values[s]
               if base.values[s][k] != real.values[s][k]}
    assert changed == {("validation", "max_population_over_operational")}


def test_overlays_apply_in_order_and_come_from_the_environment(tmp_path, monkeypatch) -> None:
    first = write(tmp_path, "a.toml", "[disclosure]\nmin_person_count = 7\n")
    second = write(tmp_path, "b.toml", "[disclosure]\nmin_person_count = 9\n")
    monkeypatch.setenv(OVERLAYS_ENV, f"{first}:{second}")
    config = Config.load()
    assert config.get("disclosure", "min_person_count") == 9
    assert config.dbt_vars["disclosure_min_person_count"] == 9


@pytest.mark.parametrize(("text", "says"), [
    ("[validation]\nmax_populaton_over_operational = 3.0\n",
     "unknown key [validation] max_populaton_over_operational"),
    ("[validaton]\nmax_population_over_operational = 3.0\n", "unknown section [validaton]"),
    ('[validation]\nmax_population_over_operational = "3"\n', "is not of the type"),
    ("[operations]\nalert_days_late = 1.5\n", "is not of the type"),
    ("[disclosure]\nmin_person_count = true\n", "is not of the type"),
    ("validation = 3\n", "must be a table [validation]"),
    ("[validation\n", "not valid TOML"),
])
def test_a_bad_overlay_is_an_error_naming_the_file_and_key(tmp_path, text, says) -> None:
    overlay = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as error:
        Config.load(overlays=[overlay])
    assert says in str(error.value)
    assert str(overlay) in str(error.value)


def test_an_integer_may_stand_for_a_decimal(tmp_path) -> None:
    overlay = write(tmp_path, "int.toml", "[validation]\nmax_population_over_operational = 3\n")
    assert Config.load(overlays=[overlay]).get("validation",
                                              "max_population_over_operational") == 3


def test_a_missing_file_is_an_error_naming_it(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml"):
        Config.load(overlays=[tmp_path / "nowhere.toml"])
