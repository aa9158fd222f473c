"""The training export's files as one set (docs/data_formats.md §6): written together, replaced
together, and checked together before training.

`write_export_set` writes every file and `export_manifest.json` (each file's SHA-256 and the
export id, a hash of those) into a fresh sibling directory `.<name>.export-new-<pid>`, then
swaps it in (utils.swap_in): the old directory is renamed aside to `.<name>.export-old-<pid>`,
the new one renamed into place, the old one deleted. The swap is the single commit point: the export
directory is the complete old set or the complete new set (or, after a kill between the two
renames, absent), never a mix. Leftovers of a killed export are deleted by the next one.
A directory holding anything besides an export's files is never replaced. Leave-topics-out folds
(`fold_<i>/`, each a complete set with its own manifest) are written into the same staging
directory, so they are swapped in with the main set, as one. Each set's dataset card (`README.md`,
export.card) is written after its manifest, since it names the export id; it is not in the manifest
(the card describes the data and is not data: editing it for the Hub does not stop training).

`check_export_dir` and `check_export_files` (used by spt/training/training_data.py) refuse data
files that are missing from, or differ from, the manifest beside them, and a train and a
validation file from different exports. Reads and writes only the export directory and its
staging siblings.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from spt import utils
from spt.utils import DataError, display_path, file_sha256

MANIFEST = "export_manifest.json"
CARD = "README.md"  # the dataset card (export.card): beside the set, not in its manifest
EXPORT_FILES = (
    "train.jsonl",
    "validation.jsonl",
    "heldout_topics.jsonl",
    "sample_decisions.jsonl",
    "cites_system_prompt.jsonl",
    "off_policy_eval.json",
    "export_stats.json",
    "export_report.md",
)
VIEWER_DIR = "viewer"  # the sample viewer written beside the set (export.run), not part of the manifest
STAGING_KIND = "export"  # staging folders: .<name>.export-new-<pid>, .<name>.export-old-<pid> (utils.staging_dir)
FOLD_DIR = re.compile(r"fold_\d+")
RERUN = "run scripts/export_training_data.py again"


def _export_id(hashes: dict[str, str]) -> str:
    """The export's id: a hash of its files' names and SHA-256s (the same set, the same id)."""
    listing = "".join(f"{name}\t{sha}\n" for name, sha in sorted(hashes.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()[:16]


def _export_file_name(name: str) -> bool:
    """A file of an export, or the temporary of one that an interrupted write left (utils.atomic_write_text)."""
    own = (*EXPORT_FILES, MANIFEST, CARD)
    return (
        name in (*own, VIEWER_DIR)
        or FOLD_DIR.fullmatch(name) is not None
        or any(name.startswith(f".{export_name}.") and name.endswith(".tmp") for export_name in own)
    )


def check_export_target(output_dir: Path, what: str) -> None:
    """Before any work: the export can be written beside `output_dir` (utils.check_writable_dir on
    its parent; `output_dir` itself is not created) and `output_dir` holds nothing but an export,
    since the whole directory is replaced. `what` names the flag or config key that set it."""
    utils.check_writable_dir(output_dir.parent, f"the folder of {what}")
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f"{display_path(output_dir)} ({what}): is a file, not a folder")
    if output_dir.is_dir():
        foreign = sorted(p.name for p in output_dir.iterdir() if not _export_file_name(p.name))
        if foreign:
            raise DataError(
                f"{display_path(output_dir)} ({what}): holds {', '.join(foreign)} besides an export; "
                "the export replaces the whole folder, so give an empty or export-only folder"
            )


class ExportSet(NamedTuple):
    """One complete set: its files (name -> content) and its dataset card (export id -> the card's text)."""

    texts: dict[str, str]
    card: Callable[[str], str]


def write_export_set(output_dir: Path, export: ExportSet, folds: dict[str, ExportSet] | None = None) -> str:
    """Write `export` (its files, the manifest, its card) as the new export in `output_dir`, and each
    of `folds` (folder name -> its set) as a complete set in that subfolder, replacing the old export
    as one; returns the export id."""
    check_export_target(output_dir, "the export directory")
    utils.remove_staging_leftovers(output_dir, STAGING_KIND)
    staging = utils.staging_dir(output_dir, STAGING_KIND)
    try:
        export_id = _write_staging(staging, export, folds or {})
        utils.swap_in(staging, output_dir, STAGING_KIND)
    except OSError as exc:  # a full disk, a name too long: one line naming the export (utils.exit_on_data_error)
        exc.filename = str(output_dir)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_id


def _write_staging(staging: Path, export: ExportSet, folds: dict[str, ExportSet]) -> str:
    """The complete new export, its folds' sets, then its manifest, then its card, in the fresh
    directory `staging`; returns its id. The manifest names each fold's export id under `folds`."""
    staging.mkdir()
    fold_ids = {name: _write_staging(staging / name, fold, {}) for name, fold in folds.items()}
    for name, text in export.texts.items():
        utils.atomic_write_text(staging / name, text)
    hashes = {name: file_sha256(staging / name) for name in export.texts}
    export_id = _export_id(hashes)
    utils.atomic_write_json(
        staging / MANIFEST, {"export_id": export_id, "files": hashes, **({"folds": fold_ids} if fold_ids else {})}
    )
    utils.atomic_write_text(staging / CARD, export.card(export_id))
    return export_id


# ------------------------------------------------------------------------------ checks before training


def _read_manifest(path: Path) -> dict:
    manifest = utils.read_json(path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not isinstance(manifest.get("export_id"), str):
        raise DataError(f"{display_path(path)}: not an export manifest (needs 'export_id' and 'files'); {RERUN}")
    return manifest


def _check_listed(path: Path, manifest: dict, manifest_path: Path) -> None:
    expected = manifest["files"].get(path.name)
    if expected is None:
        raise DataError(
            f"{display_path(path)}: not part of export {manifest['export_id']} ({display_path(manifest_path)}); {RERUN}"
        )
    if not path.is_file():
        raise DataError(
            f"{display_path(path)}: missing from export {manifest['export_id']} (incomplete export); {RERUN}"
        )
    if file_sha256(path) != expected:
        raise DataError(
            f"{display_path(path)}: differs from export {manifest['export_id']} "
            f"({display_path(manifest_path)}): changed, or from another export; {RERUN}"
        )


def check_export_dir(export_dir: Path) -> str:
    """Every file the manifest of `export_dir` lists is there and unchanged; returns the export id.
    No manifest (an older or an interrupted export) is an error."""
    manifest_path = export_dir / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{display_path(export_dir)}: no {MANIFEST}, so not a complete export; {RERUN}")
    manifest = _read_manifest(manifest_path)
    for name in manifest["files"]:
        _check_listed(export_dir / name, manifest, manifest_path)
    return manifest["export_id"]


def check_export_files(paths: list[Path]) -> None:
    """Data files given by name: each one with a manifest beside it must match it, and files
    with manifests must all come from one export (hand-made files without a manifest pass)."""
    exports = {}
    for path in paths:
        manifest_path = path.parent / MANIFEST
        if manifest_path.is_file():
            manifest = _read_manifest(manifest_path)
            _check_listed(path, manifest, manifest_path)
            exports[display_path(path)] = manifest["export_id"]
    if len(set(exports.values())) > 1:
        raise DataError(
            "the data files come from different exports: "
            + ", ".join(f"{name} (export {export_id})" for name, export_id in exports.items())
        )
