"""Finding and reading stage-1/2 batch files (docs/data_formats.md §4.1, §4.2), with one-line errors for bad input.

`batch_files(stage, names, exclude)` lists `data/stage_<n>/<topic>/*.json` for the chosen topics;
`load_batch(path)` reads one batch file and checks the fields every later stage relies on;
`stage_path(path, stage)` maps a batch file onto the same file name in another stage's folder;
`save_merged(path, doc, owned)` writes a stage-2 file that other runs write too (stage 2 of other
models, the verification): under the folder's write lock it re-reads the file and keeps every
item field except the ones this run owns, so no run's answers or verdicts are lost.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from spt import locks, utils
from spt.shared_tools import TOPICS, VARIANTS

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
            raise utils.DataError(
                f"{utils.display_path(root / missing[0])}: no such folder (run stage {stage} for this topic first)"
            )
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


def _same_items(disk: list, ours: list) -> bool:
    return len(disk) == len(ours) and all(
        isinstance(a, dict) and a.get("A") == b.get("A") and a.get("T") == b.get("T") for a, b in zip(disk, ours)
    )


def save_merged(path: Path, doc: dict, owned: Callable[[dict, dict], None]) -> None:
    """Atomically write `doc` to `path` after merging what other runs wrote there since it was read.

    Under `locks.writing` the file is read again; each of `doc`'s items then takes every field of
    the file's item, except those `owned(file_item, our_item)` puts back from ours (it gets a copy
    of the file's item to change, and our item). The merged items replace ours in place, so a run
    holding on to an item sees the merge. A file whose items no longer match (another stage-1 run
    rewrote it) is a DataError: nothing is written over it.
    """
    with locks.writing(path.parent):
        if path.exists():
            disk = load_batch(path)
            if not _same_items(disk["data"], doc["data"]):
                raise utils.DataError(
                    f"{utils.display_path(path)}: its items changed while this run held it "
                    f"(another run rewrote the file); rerun to continue from the file as it is"
                )
            for ours, theirs in zip(doc["data"], disk["data"]):
                merged = copy.deepcopy(theirs)
                owned(merged, ours)
                ours.clear()
                ours.update(merged)
        utils.atomic_write_json(path, doc)
