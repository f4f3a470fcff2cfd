"""The import layers of docs/architecture.md hold, and a new upward import breaks the check."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "config",
    "directory",
    "entitlements",
    "notifications",
    "approvals",
    "reviews",
    "extensions",
    "myaccess",
    "demo",
]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def lint_imports(cwd):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree_copy(tmp_path):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_are_kept(tree_copy):
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_import_from_a_higher_layer_breaks_the_contract(tree_copy):
    (tree_copy / "entitlements" / "upward.py").write_text("from approvals import services\n")

    result = lint_imports(tree_copy)

    assert result.returncode != 0
    assert "entitlements.upward -> approvals.services" in result.stdout


def test_a_function_local_import_from_a_higher_layer_breaks_it_too(tree_copy):
    (tree_copy / "notifications" / "sideways.py").write_text(
        "def later():\n    from reviews.models import ReviewInstance\n\n    return ReviewInstance\n"
    )

    result = lint_imports(tree_copy)

    assert result.returncode != 0
    assert "notifications.sideways -> reviews.models" in result.stdout
