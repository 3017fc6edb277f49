"""The suite's own layout: test modules and their helpers share code through
tests/support only; none imports conftest.py or another test module (pytest
finds conftest's fixtures itself, and a test module imported elsewhere runs its
fixtures twice and its tests under two names)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def forbidden_imports(source: str) -> list[str]:
    """The modules ``source`` imports that are conftest or a test module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [base] + [f"{base.rstrip('.')}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names
                  if name.rsplit(".", 1)[-1] == "conftest" or
                  name.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_the_check_sees_each_way_of_importing_a_test_module():
    for line in ["from tests.conftest import _start", "from tests import conftest",
                 "import tests.test_units", "from tests.test_permissions import API",
                 "from tests import test_audit", "from .test_metrics import scrape",
                 "from . import conftest", "    from tests.test_units import FakeClock"]:
        assert forbidden_imports(line.strip()), line
    for line in ["from tests.support.callers import API", "from tests.support import jwt_keys",
                 "import pytest", "from mlflow_hokusai.plugins.auth import tests_of_keys"]:
        assert not forbidden_imports(line), line


def test_no_module_of_the_suite_imports_conftest_or_a_test_module():
    modules = sorted(TESTS.rglob("*.py"))
    assert TESTS / "conftest.py" in modules and TESTS / "support" / "callers.py" in modules
    offenders = {str(path.relative_to(TESTS)): names for path in modules
                 if (names := forbidden_imports(path.read_text()))}
    assert offenders == {}, "share it through tests/support (fixtures: conftest.py)"
