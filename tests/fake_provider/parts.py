"""The fake's provider parts: every `*_api.py` module of this package declares `API`, a common.FakeApi
(its routes, wire, errors, rate-limit headers, prices, environment, documentation tags), found here in file-name order. A
new provider adds its own `<name>_api.py` and nothing else of the server. Reads nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from . import common
from .common import FakeApi

PARTS: tuple[FakeApi, ...] = tuple(
    importlib.import_module(f"{__package__}.{module.name}").API
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda module: module.name)
    if module.name.endswith("_api")
)
PAID_APIS = tuple(api for part in PARTS for api in part.apis)  # the ledger apis of model calls
SOURCES: dict[str, str] = {**common.SOURCES, **{tag: source for part in PARTS for tag, source in part.sources.items()}}
_BY_API = {api: part for part in PARTS for api in part.apis}


def part_of(api: str) -> FakeApi:
    """The part whose model calls are recorded as `api` (e.g. anthropic_batch: the Anthropic part)."""
    return _BY_API[api]
