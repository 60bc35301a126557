"""The layering contract of pyproject.toml holds, and is not vacuous.

import-linter checks that every module of penstat imports only the layers below its
own. The contract is run on the real package, then on a scratch copy into which one
upward import (core -> cli) is added: that copy must fail, naming the import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from penstat.core.locations import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"),
                           "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(REPO_ROOT / "penstat", root / "penstat",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_package_keeps_its_layers(scratch: Path) -> None:
    result = lint_imports(scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(scratch: Path) -> None:
    clock = scratch / "penstat" / "core" / "clock.py"
    original = clock.read_text()
    clock.write_text(original + "\nfrom penstat.cli import main as _upward  # noqa\n")
    try:
        result = lint_imports(scratch)
    finally:
        clock.write_text(original)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "penstat.core.clock -> penstat.cli.main" in result.stdout


def test_an_import_between_independent_layers_breaks_the_contract(scratch: Path) -> None:
    """Senders hold only the contract: they may not use the validation layer."""
    delivery = scratch / "penstat" / "senders" / "delivery.py"
    original = delivery.read_text()
    delivery.write_text(original + "\nfrom penstat.validation import suites as _sideways  # noqa\n")
    try:
        result = lint_imports(scratch)
    finally:
        delivery.write_text(original)
    assert result.returncode != 0
    assert "penstat.senders.delivery -> penstat.validation.suites" in result.stdout
