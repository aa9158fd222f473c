"""Prices of model tokens, read from config/model_prices.json (USD per million tokens).

A model is priced by its exact entry, else by the longest `prefix*` pattern that matches it,
else by the `default` entry (with one warning per model). Reads the prices file; writes nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from utils import CONFIG_DIR, DataError, display_path, read_json

from .types import Usage

PRICES_FILE = CONFIG_DIR / "model_prices.json"
PRICE_FIELDS = ("input", "output", "cache_write", "cache_read")
log = logging.getLogger("spt.providers")


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens of each kind."""
    input: float
    output: float
    cache_write: float
    cache_read: float


class PriceTable:
    """The prices file, loaded and checked once."""

    def __init__(self, path: str | Path = PRICES_FILE):
        raw = read_json(path)
        self.where = where = display_path(path)
        if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
            raise DataError(f"{where}: expected an object with a 'models' object")
        self.batch_discount = float(raw.get("batch_discount", 0.5))
        if not 0 <= self.batch_discount < 1:
            raise DataError(f"{where}: batch_discount must be in [0, 1), got {self.batch_discount}")
        self.prices: dict[str, ModelPrice] = {}
        for pattern, entry in raw["models"].items():
            if not isinstance(entry, dict) or set(entry) != set(PRICE_FIELDS):
                raise DataError(f"{where}: models[{pattern!r}] must have exactly the keys {', '.join(PRICE_FIELDS)}")
            if not all(isinstance(entry[f], (int, float)) and entry[f] >= 0 for f in PRICE_FIELDS):
                raise DataError(f"{where}: models[{pattern!r}]: prices must be non-negative numbers")
            self.prices[pattern] = ModelPrice(**{f: float(entry[f]) for f in PRICE_FIELDS})
        if "default" not in self.prices:
            raise DataError(f"{where}: models must have a 'default' entry")
        self._warned: set[str] = set()

    def price(self, model: str) -> ModelPrice:
        """The price of `model` (exact name, longest matching `prefix*`, else default)."""
        if model in self.prices:
            return self.prices[model]
        matches = [p for p in self.prices if p.endswith("*") and model.startswith(p[:-1])]
        if matches:
            return self.prices[max(matches, key=len)]
        if model not in self._warned:
            self._warned.add(model)
            log.warning("no price for model %r in %s; using the 'default' entry", model, self.where)
        return self.prices["default"]

    def cost(self, usage: Usage, model: str, *, batch: bool = False) -> float:
        """USD cost of `usage` on `model` (half price, or the configured discount, for batch calls)."""
        price = self.price(model)
        usd = (usage.input_tokens * price.input + usage.output_tokens * price.output
               + usage.cache_creation_input_tokens * price.cache_write
               + usage.cache_read_input_tokens * price.cache_read) / 1e6
        return usd * (1 - self.batch_discount) if batch else usd


_default_table: PriceTable | None = None


def default_prices() -> PriceTable:
    """The project's price table, loaded on first use."""
    global _default_table
    if _default_table is None:
        _default_table = PriceTable()
    return _default_table
