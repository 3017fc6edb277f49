"""What several test modules share: server processes, clients, fake clocks and
the worlds they build. Test modules import from here, never from each other or
from conftest.py (tests/test_suite_imports.py checks it)."""
