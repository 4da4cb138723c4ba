"""pytest settings for the CLI tests (tests/cli/test_cli.py)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: against the real Hydra of $TOKENWELL_SERVERS (tests/integration/run.sh cli)")
