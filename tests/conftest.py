"""Shared pytest fixtures."""
from __future__ import annotations

import pytest

from fake_provider_server import FakeProviderServer


@pytest.fixture
def fake_server():
    """A started FakeProviderServer (seed 0, no latency, no faults), stopped after the test."""
    with FakeProviderServer(seed=0) as server:
        yield server
