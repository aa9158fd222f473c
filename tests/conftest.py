"""Shared pytest fixtures."""
from __future__ import annotations

import pytest

from fake_provider_server import FakeProviderServer


@pytest.fixture
def fake_server():
    """A started FakeProviderServer (seed 0, no latency, no faults), stopped after the test."""
    with FakeProviderServer(seed=0) as server:
        yield server


@pytest.fixture()
def torch_one_thread():
    """Tiny models gain nothing from threads; one avoids contention on shared CI cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
