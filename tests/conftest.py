"""Shared pytest fixtures."""

from __future__ import annotations

import pytest
from fake_provider import FakeProviderServer


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


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """family -> (tokenizer with the split-personality token, SpToken, model) for each tiny model
    family (training/tiny_model.py), built once per test module."""
    from transformers import AutoModelForCausalLM

    from spt.training import spt_model
    from spt.training.tiny_model import FAMILIES, build_tiny_model

    root = tmp_path_factory.mktemp("tiny_families")
    result = {}
    for family in FAMILIES:
        path = build_tiny_model(root / family, family)
        tokenizer = spt_model.load_tokenizer(str(path))
        model = AutoModelForCausalLM.from_pretrained(path)
        result[family] = (tokenizer, spt_model.setup_sp_token(tokenizer, model, 1), model)
    return result
