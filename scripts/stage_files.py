"""Finding and reading stage-1/2 batch files (docs/data_formats.md §4.1, §4.2), with one-line errors for bad input.

`batch_files(stage, names, exclude)` lists `data/stage_<n>/<topic>/*.json` for the chosen topics;
`load_batch(path)` reads one batch file and checks the fields every later stage relies on;
`stage_path(path, stage)` maps a batch file onto the same file name in another stage's folder.
Reads only; writing is left to the stages (utils.atomic_write_json).
"""
from __future__ import annotations

from pathlib import Path

import utils
from shared_tools import TOPICS, VARIANTS

ALL = "all"


def topic_dirs(stage: int, names: list[str], exclude: list[str] = ()) -> list[Path]:
    """The topic folders of `stage` for `names` (topic names, or `all`), minus `exclude`."""
    root = utils.STAGE_DIRS[stage]
    for name in [*names, *exclude]:
        if name != ALL and name not in TOPICS:
            raise utils.DataError(f"unknown topic {name!r} in --names/--exclude; known topics: {', '.join(TOPICS)}")
    if ALL in names:
        chosen = [topic for topic in TOPICS if (root / topic).is_dir()]
        if not chosen:
            raise utils.DataError(f"{utils.display_path(root)}: no topic folders found")
    else:
        chosen = list(dict.fromkeys(names))
        missing = [topic for topic in chosen if not (root / topic).is_dir()]
        if missing:
            raise utils.DataError(f"{utils.display_path(root / missing[0])}: no such folder "
                                  f"(run stage {stage} for this topic first)")
    return [root / topic for topic in chosen if topic not in exclude]


def batch_files(stage: int, names: list[str], exclude: list[str] = ()) -> list[Path]:
    """Every batch file of the chosen topics of `stage`, sorted by topic then file name."""
    return [path for folder in topic_dirs(stage, names, exclude) for path in sorted(folder.glob("*.json"))]


def stage_path(path: Path, stage: int) -> Path:
    """`data/stage_1/<topic>/<file>` -> `data/stage_<stage>/<topic>/<file>`."""
    return utils.STAGE_DIRS[stage] / path.parent.name / path.name


def _require_string(value, where: str, field: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise utils.DataError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")


def load_batch(path: Path) -> dict:
    """Read a stage-1 or stage-2 batch file and check `topic`, `data` and each item's A/B/T."""
    doc = utils.read_json(path)
    where = utils.display_path(path)
    if not isinstance(doc, dict):
        raise utils.DataError(f"{where}: expected a JSON object at the top level")
    _require_string(utils.require_field(doc, "topic", where), where, "topic")
    items = utils.require_field(doc, "data", where)
    if not isinstance(items, list):
        raise utils.DataError(f"{where}: field 'data' must be a list")
    for index, item in enumerate(items):
        item_where = f"{where}: data[{index}]"
        if not isinstance(item, dict):
            raise utils.DataError(f"{item_where}: expected an object")
        for field in ("A", "T"):
            _require_string(utils.require_field(item, field, item_where), item_where, field)
        _require_string(item.get("B"), item_where, "B", optional=True)
        inferences = item.get("inferences", {})
        if not isinstance(inferences, dict) or not all(isinstance(v, dict) for v in inferences.values()):
            raise utils.DataError(f"{item_where}: field 'inferences' must map model ids to objects")
    return doc


def item_variants(item: dict) -> list[str]:
    """The variants an item has: A always, B where it is non-empty."""
    return [variant for variant in VARIANTS if variant == "A" or (item.get("B") or "").strip()]
