"""The engine's conversation fixture: real parts on a fresh data folder, with slow database queries."""

import pytest

from tests.conftest import build_parts, make_settings


@pytest.fixture
def chat(tmp_path, knowledge):
    parts = build_parts(make_settings(tmp_path, simulation_faults=["slow_queries"]), knowledge=knowledge)
    yield parts
    parts.close()
