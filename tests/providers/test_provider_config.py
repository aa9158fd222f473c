"""config/providers.json: a provider without an entry (or an entry without some keys) gets the defaults
of its ProviderSpec, so a new provider needs no entry; entries that exist are still checked strictly."""

from __future__ import annotations

import json

import pytest

from spt.providers import load_provider_config, registry
from spt.providers.cli import PROVIDERS_CONFIG
from spt.utils import DataError


def _write(tmp_path, change) -> str:
    config = json.loads(PROVIDERS_CONFIG.read_text())
    change(config)
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_provider_without_an_entry_gets_no_limits_and_its_spec_base_url(tmp_path):
    path = _write(tmp_path, lambda config: [config["providers"].pop(name) for name in ("openrouter", "mock")])
    providers = load_provider_config(path)["providers"]
    assert providers["openrouter"] == {
        "rpm": None,
        "itpm": None,
        "otpm": None,
        "base_url": "https://openrouter.ai/api/v1",
    }
    assert providers["mock"] == {"rpm": None, "itpm": None, "otpm": None, "base_url": None}
    assert providers["anthropic"]["rpm"] == 4000  # the entries that exist are kept as the user tuned them


def test_every_registered_provider_gets_an_entry_from_an_empty_providers_section(tmp_path):
    providers = load_provider_config(_write(tmp_path, lambda config: config.update(providers={})))["providers"]
    assert set(providers) == set(registry.NAMES)
    assert {name: entry["base_url"] for name, entry in providers.items()} == {
        name: spec.default_base_url for name, spec in registry.PROVIDERS.items()
    }


def test_an_entry_without_base_url_gets_the_spec_default_and_keeps_its_limits(tmp_path):
    path = _write(tmp_path, lambda config: config["providers"]["openrouter"].pop("base_url"))
    entry = load_provider_config(path)["providers"]["openrouter"]
    assert entry == {"rpm": 600, "itpm": None, "otpm": None, "base_url": "https://openrouter.ai/api/v1"}


def test_the_shipped_openrouter_base_url_is_its_spec_default():
    shipped = json.loads(PROVIDERS_CONFIG.read_text())["providers"]["openrouter"]["base_url"]
    assert shipped == registry.spec("openrouter").default_base_url


@pytest.mark.parametrize(
    "entry, named",
    [
        ([], "providers.mock must be an object"),
        ({"rpm": -1}, "providers.mock: rpm must be at least 0"),
        ({"base_url": 5}, "providers.mock.base_url must be a string or null"),
    ],
)
def test_an_entry_that_exists_is_checked_strictly(tmp_path, entry, named):
    path = _write(tmp_path, lambda config: config["providers"].update(mock=entry))
    with pytest.raises(DataError, match=named.replace(".", r"\.")):
        load_provider_config(path)
