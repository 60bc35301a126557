"""The `penstat` command line: its subcommands and documented exit codes.

That `penstat ingest/build/publish` publish what the Airflow DAGs publish is shown
end to end in tests/e2e/test_e2e_airflow.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from penstat.cli import main as cli
from penstat.contract.feeds import FEEDS
from tests import builders as b

COMMANDS = ("up", "down", "status", "demo", "real", "rebuild", "ingest", "build", "publish",
            "dashboard")


def test_help_lists_every_command_and_the_exit_codes() -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "penstat"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in COMMANDS:
        assert f"\n    {command} " in out.stdout, command
    for code in ("0  done", "1  the step failed", "2  usage", "3  done, but look"):
        assert code in out.stdout


def test_python_dash_m_penstat_is_the_same_command() -> None:
    out = subprocess.run([sys.executable, "-m", "penstat", "ingest", "no_such_feed"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == cli.USAGE
    assert "unknown feed(s) no_such_feed" in out.stderr


def test_an_unknown_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["frobnicate"])
    assert exit_.value.code == cli.USAGE


def test_ingest_loads_valid_deliveries_and_says_so(paths, capsys) -> None:
    b.register(paths.inbox)
    assert cli.main(["ingest", "facility_register"]) == cli.DONE
    loaded = f"facility_register/reg-1: loaded ({len(b.REGISTER_ROWS)} rows)"
    assert loaded in capsys.readouterr().out
    # run again before a build: nothing new, but the loaded delivery awaits its build
    assert cli.main(["ingest", "facility_register"]) == cli.DONE
    assert capsys.readouterr().out == "facility_register/reg-1: awaiting_build\n"
    assert cli.main(["ingest", "staffing"]) == cli.DONE
    assert capsys.readouterr().out == "no pending delivery\n"


def test_a_quarantined_delivery_asks_for_attention(paths, capsys) -> None:
    b.register(paths.inbox)
    folder = b.occupancy(paths.inbox, delivery_id="occ-bad")
    with open(folder / "occupancy.csv", "ab") as fh:
        fh.write(b"TS-0001,2024-01-02,0,1,0,0,0,0,0,0\n")
    assert cli.main(["ingest", "all"]) == cli.ATTENTION
    out = capsys.readouterr()
    assert "facility_register/reg-1: loaded" in out.out  # the register went first
    assert "occupancy/occ-bad: quarantined" in out.out
    assert "checksum_mismatch" in out.err
    assert (paths.quarantine / "occupancy" / "occ-bad" / "_REJECTED.json").is_file()


def test_all_feeds_run_register_first() -> None:
    assert cli.FEED_ORDER[0] == "facility_register"
    assert sorted(cli.FEED_ORDER) == sorted(FEEDS)


def test_a_configuration_error_is_a_usage_error(paths, tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[validation]\nno_such_key = 1\n")
    monkeypatch.setenv("PENSTAT_CONFIG_OVERLAYS", str(bad))
    assert cli.main(["build"]) == cli.USAGE
    assert "unknown key [validation] no_such_key" in capsys.readouterr().err


def test_a_failed_step_exits_1_with_one_line(paths, monkeypatch, capsys) -> None:
    def gate_fails() -> dict:
        raise RuntimeError("publication gate failed (2 expectation(s))")

    monkeypatch.setattr(cli.tasks, "gate_and_publish", gate_fails)
    assert cli.main(["publish"]) == cli.FAILED
    err = capsys.readouterr().err
    assert "penstat publish: failed: RuntimeError: publication gate failed" in err
    assert "Traceback" not in err


def test_status_without_a_stack_asks_for_attention(paths, capsys) -> None:
    assert cli.main(["status"]) == cli.ATTENTION
    assert "not running" in capsys.readouterr().out


def test_dashboard_without_a_publication_is_a_usage_error(paths, capsys) -> None:
    assert cli.main(["dashboard", "--build-only"]) == cli.USAGE
    assert "no publication" in capsys.readouterr().err


def test_dashboard_draws_the_current_publications_dashboard(paths, capsys) -> None:
    from penstat.publication.publish import publish
    from tests.unit.publication.test_publication import build_marts

    build_marts(paths)
    version = publish(paths).version
    assert cli.main(["dashboard", "--build-only"]) == cli.DONE
    index = paths.published / version / "dashboard" / "index.html"
    assert str(index) in capsys.readouterr().out
    assert version in index.read_text()
