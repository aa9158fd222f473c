"""The tagging run behind scripts/tag_stage_3_data.py (docs/data_formats.md §5): tags on every variant and
intervention, plus `id_string` and `id_numeric` on every intervention (rules: tagging.tags).

Reads `<input>/<topic>/*.json` in sorted order and writes the tagged files under the same
relative paths in the output directory (which may be the input directory). Every output first
goes to a temporary file beside its target; only when all files were tagged are the
temporaries renamed into place, so a bad file leaves every existing file untouched (which is
why the tagger has its own two-step write instead of utils.atomic_write_text; the temporaries
are utils.write_temporary's, so a replaced file keeps its mode). A run killed before that
rename leaves its temporaries; the next run deletes them from the folders it writes before it
starts. Re-running on tagged data gives byte-identical output: old tags and ids are stripped
before they are recomputed. Output bytes are exactly `json.dumps(document, indent=2, ensure_ascii=True)`
(docs/data_formats.md §4.6).
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from spt import utils
from spt.shared_tools import BASELINE_VERSION, VARIANTS
from spt.tagging.tags import (
    MALFORMED_FIELDS,
    TAG_ORDER,
    VARIANT_ONLY_TAGS,
    VARIANT_TAGS,
    causal_verification_tags,
    consensus_flags,
    consensus_tags,
    describe_tags,
    disagreement_tags,
    id_string,
    intervention_tags,
    model_entries,
    new_intervention_tags,
    require_object,
    stage_3_files,
    variant_malformed_tags,
    variant_own_tags,
)
from spt.utils import DataError, display_path

STRIPPED_INTERVENTION_KEYS = ("tags", "id_numeric", "id_string")


# ------------------------------------------------------------------------------ one file


def _texts(intervention: dict, where: Callable[[], str]) -> tuple[str, str]:
    """(I, R) of an intervention; a missing or null text counts as empty."""
    texts = (intervention.get("I"), intervention.get("R"))
    for field, value in zip("IR", texts):
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where()}: field {field!r} must be a string")
    return texts[0] or "", texts[1] or ""


def _prepare_model_entry(model_entry: dict, where: str) -> dict[str, dict]:
    """Strip old tags/ids, drop baseline interventions and variants left without any;
    returns the remaining variants by letter."""
    for letter in VARIANTS:
        if letter not in model_entry:
            continue
        variant = require_object(model_entry[letter], f"{where}.{letter}")
        variant.pop("tags", None)
        interventions = variant.get("interventions")
        if interventions is None:
            del model_entry[letter]
            continue
        interventions = require_object(interventions, f"{where}.{letter}.interventions")
        for key in [k for k in interventions if k.endswith(f"__{BASELINE_VERSION}")]:
            del interventions[key]
        if not interventions:
            del model_entry[letter]
            continue
        for key, intervention in interventions.items():
            require_object(intervention, f"{where}.{letter}.interventions[{key!r}]")
            for stripped in STRIPPED_INTERVENTION_KEYS:
                intervention.pop(stripped, None)
    return {letter: model_entry[letter] for letter in VARIANTS if letter in model_entry}


def _model_entries(document: Any, where: str):
    """Yield (item index, item, model id, variants) for every model entry of a loaded file,
    after `_prepare_model_entry` (old tags stripped, baselines and empty variants dropped)."""
    for item_index, item, model_id, model_entry, model_where in model_entries(document, where):
        variants = _prepare_model_entry(model_entry, model_where)
        if variants:
            yield item_index, item, model_id, variants


def count_interventions(document: Any, where: str) -> int:
    """How many interventions `tag_file` will number (strips old tags and drops baselines
    in place, like tagging does); validates the file's structure."""
    return sum(
        len(variant["interventions"])
        for *_, variants in _model_entries(document, where)
        for variant in variants.values()
    )


def tag_file(document: Any, file_stem: str, first_id_numeric: int, where: str) -> int:
    """Tag one loaded stage-3 file in place (no I/O); returns the next free `id_numeric`.

    `where` names the file in error messages. Raises DataError on malformed input, possibly
    after changing part of `document` (callers then discard the object).
    """
    next_id = first_id_numeric
    for item_index, item, model_id, variants in _model_entries(document, where):
        metadata = item.get("metadata")
        intended_focus = metadata.get("intended_review_focus") if isinstance(metadata, dict) else None
        flags = {letter: consensus_flags(variant["interventions"]) for letter, variant in variants.items()}
        entry_tags = consensus_tags(flags["A"], flags["B"]) if len(variants) == 2 else []
        causal = causal_verification_tags(item)
        for letter, variant in variants.items():
            disagreement = disagreement_tags(flags[letter])
            propagated = disagreement + entry_tags
            variant["tags"] = (
                variant_own_tags(variant, letter, "B" in variants, disagreement)
                + entry_tags
                + causal
                + variant_malformed_tags(variant)
            )
            for key, intervention in variant["interventions"].items():
                intervention_text, review = _texts(
                    intervention,
                    lambda: f"{where}: data[{item_index}].inferences[{model_id!r}].{letter}.interventions[{key!r}]",
                )
                intervention["tags"] = (
                    intervention_tags(intervention, intervention_text, review, intended_focus)
                    + propagated
                    + _before_malformed(new_intervention_tags(intervention, key, intervention_text, review), causal)
                )
                intervention["id_numeric"] = next_id
                intervention["id_string"] = id_string(file_stem, item_index, model_id, letter, key)
                next_id += 1
    return next_id


def _before_malformed(tags: list[str], extra: list[str]) -> list[str]:
    """`tags` with `extra` inserted where TAG_ORDER puts it: before MALFORMED_FIELDS, which comes last."""
    cut = tags.index(MALFORMED_FIELDS) if MALFORMED_FIELDS in tags else len(tags)
    return tags[:cut] + extra + tags[cut:]


def count_tags(document: dict) -> tuple[Counter, Counter, int, int]:
    """(interventions per tag, variants per tag, number of interventions, number of variants)."""
    per_intervention: Counter = Counter()
    per_variant: Counter = Counter()
    interventions = variants = 0
    for item in document.get("data", []):
        for model_entry in (item.get("inferences") or {}).values():
            for letter in VARIANTS:
                variant = model_entry.get(letter)
                if not variant:
                    continue
                variants += 1
                per_variant.update(variant.get("tags", ()))
                for intervention in variant.get("interventions", {}).values():
                    interventions += 1
                    per_intervention.update(intervention.get("tags", ()))
    return per_intervention, per_variant, interventions, variants


# ------------------------------------------------------------------------------ serialisation
# Writing JSON is the tagger's largest cost. Measured with tests/benchmarks/bench_tagging.py
# (153 MB, --jobs 1, 2 shared cores, 7 alternating runs): the whole run took 4.47 CPU-s (median;
# best wall 4.48 s) with `dumps_stage_3` below and 5.84 CPU-s (best wall 5.94 s) with plain
# json.dumps, about 30% more; so the bytes of json.dumps are produced with orjson plus fix-ups.
# orjson writes some small floats differently from Python's repr (1e-05 as 0.00001, 1.5e-07 as
# 1.5e-7). A number token in indented JSON follows a space (": " or indentation) or starts the
# document, and ends its line (optionally with ","); a raw line end cannot occur inside a JSON
# string, so what `_SMALL_FLOAT_ENDS` finds is the end of a number, never string content.
_SMALL_FLOAT_ENDS = (re.compile(rb"e-\d+(?=,?\n|,?$)"), re.compile(rb"0\.0000\d+(?=,?\n|,?$)"))
_SMALL_FLOAT = re.compile(rb"-?(?:0\.0000\d+|\d+(?:\.\d+)?e-\d+)")
_JSON_ESCAPES = "spt_json_ascii_escape"


def _json_escapes(error: UnicodeEncodeError) -> tuple[str, int]:
    """Codec error handler: a run of non-ASCII characters as JSON \\uXXXX escapes (astral
    characters as surrogate pairs), exactly as json.dumps(ensure_ascii=True) writes them."""
    # A JSON escape is one UTF-16 code unit in lower-case hex, so UTF-16 does the work.
    units = error.object[error.start : error.end].encode("utf-16-be").hex()
    return "".join(f"\\u{units[i : i + 4]}" for i in range(0, len(units), 4)), error.end


def dumps_stage_3(document: Any) -> bytes:
    """Exactly `json.dumps(document, indent=2, ensure_ascii=True)` as bytes (docs/data_formats.md §4.6),
    computed with orjson: non-ASCII and DEL escaped, small floats written as repr."""
    try:
        encoded = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits
        return json.dumps(document, indent=2, ensure_ascii=True).encode("ascii")
    if not encoded.isascii():
        codecs.register_error(_JSON_ESCAPES, _json_escapes)  # when needed: importing registers nothing
        encoded = encoded.decode("utf-8").encode("ascii", _JSON_ESCAPES)
    # json escapes DEL; a raw DEL byte can only sit inside a string.
    encoded = encoded.replace(b"\x7f", b"\\u007f")
    fixes = {}  # start -> end of every number token that orjson writes differently from repr
    for pattern in _SMALL_FLOAT_ENDS:
        for match in pattern.finditer(encoded):
            start = encoded.rfind(b" ", 0, match.start()) + 1
            if _SMALL_FLOAT.fullmatch(encoded, start, match.end()):
                fixes[start] = match.end()
    if not fixes:
        return encoded
    parts, end = [], 0
    for start in sorted(fixes):
        parts += [encoded[end:start], repr(float(encoded[start : fixes[start]])).encode("ascii")]
        end = fixes[start]
    return b"".join(parts) + encoded[end:]


# ------------------------------------------------------------------------------ writing


class StagedFiles:
    """Tagged files staged as temporaries beside their targets (utils.write_temporary: the
    project's temporary name, the target's mode), written and fsynced on a background thread
    (overlapping the tagging of the next file). `commit` renames them all into place once every
    file was tagged; `discard` deletes them."""

    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1)
        self._writes: list[tuple[Future, Path]] = []

    def stage(self, target: Path, payload: bytes) -> None:
        self._writes.append((self._writer.submit(utils.write_temporary, target, payload), target))

    def commit(self) -> None:
        self._writer.shutdown(wait=True)
        temporaries = [(write.result(), target) for write, target in self._writes]
        for temporary, target in temporaries:
            os.replace(temporary, target)
        for directory in {target.parent for _, target in temporaries}:
            utils.fsync_directory(directory)

    def discard(self) -> None:
        self._writer.shutdown(wait=True)
        for write, _ in self._writes:
            if not write.cancelled() and write.exception() is None:
                write.result().unlink(missing_ok=True)


# ------------------------------------------------------------------------------ the run


def _count_file(path: Path) -> int:
    """Pass 1 (worker): validate one file and count the interventions it will number."""
    return count_interventions(utils.read_json(path), display_path(path))


def _tag_one_file(job: tuple[Path, int]) -> tuple[bytes, Counter, Counter, int, int]:
    """Pass 2 (worker): tag one file from its first id; returns its bytes and counts."""
    path, first_id_numeric = job
    document = utils.read_json(path)
    tag_file(document, path.stem, first_id_numeric, display_path(path))
    return (dumps_stage_3(document), *count_tags(document))


def _mapped(function, jobs: list, processes: int) -> Iterator:
    """`map(function, jobs)` in order, over a pool of `processes` worker processes."""
    with ProcessPoolExecutor(max_workers=min(processes, len(jobs)), initializer=utils.ignore_interrupts) as pool:
        yield from pool.map(function, jobs)


def _tag_in_sequence(files: list[Path], first_id_numeric: int) -> Iterator:
    """One process, one pass: each file's first id is known from the files before it."""
    next_id = first_id_numeric
    for path in files:
        result = _tag_one_file((path, next_id))
        next_id += result[3]
        yield result


def _tag_in_parallel(files: list[Path], first_id_numeric: int, processes: int, show_progress: bool) -> Iterator:
    """Pass 1 counts every file's interventions, which fixes each file's first `id_numeric`
    (sorted file order); pass 2 tags the files in parallel."""
    first_ids = []
    next_id = first_id_numeric
    for count in tqdm(
        _mapped(_count_file, files, processes),
        total=len(files),
        unit="file",
        desc="counting",
        disable=not show_progress,
        file=sys.stderr,
    ):
        first_ids.append(next_id)
        next_id += count
    return _mapped(_tag_one_file, list(zip(files, first_ids)), processes)


def remove_stale_temporaries(directories: set[Path]) -> None:
    """Delete the temporaries that a run killed before its commit left in these folders
    (utils.remove_stale_temporaries: the project's temporary name, a process that is gone)."""
    for directory in sorted(directories):
        removed = utils.remove_stale_temporaries(directory)
        if removed:
            print(
                f"removed {len(removed)} temporary file(s) left by an interrupted run in {display_path(directory)}",
                file=sys.stderr,
            )


def tag_directory(
    input_dir: Path, output_dir: Path, first_id_numeric: int = 0, processes: int = 1, show_progress: bool = True
) -> tuple[Counter, Counter, int, int, int]:
    """Tag every file of `input_dir` into `output_dir` (may be the same directory).

    With several processes, pass 1 validates every file and counts its interventions, which
    fixes each file's first `id_numeric` (sorted file order), and pass 2 tags the files in
    parallel; with one process a single pass does both. Temporaries left in the output folders
    by a killed run are deleted first. All outputs go to temporaries first and replace their
    targets only after every file was tagged. Returns (interventions per tag, variants per tag, files, interventions, variants).
    """
    files = stage_3_files(input_dir)
    remove_stale_temporaries({(output_dir / path.relative_to(input_dir)).parent for path in files})
    if processes > 1 and len(files) > 1:
        results = _tag_in_parallel(files, first_id_numeric, processes, show_progress)
    else:
        results = _tag_in_sequence(files, first_id_numeric)
    per_intervention: Counter = Counter()
    per_variant: Counter = Counter()
    interventions = variants = 0
    staged = StagedFiles()
    try:
        with tqdm(total=len(files), unit="file", desc="tagging", disable=not show_progress, file=sys.stderr) as bar:
            for path, (payload, file_interventions, file_variants, n_interventions, n_variants) in zip(files, results):
                per_intervention += file_interventions
                per_variant += file_variants
                interventions += n_interventions
                variants += n_variants
                staged.stage(output_dir / path.relative_to(input_dir), payload)
                bar.update()
                bar.set_postfix(interventions=interventions)
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return per_intervention, per_variant, len(files), interventions, variants


def format_counts(per_intervention: Counter, per_variant: Counter, interventions: int, variants: int) -> str:
    """The count table printed at the end of a run: one row per tag in TAG_ORDER."""
    width = max(len(tag) for tag in TAG_ORDER)
    lines = [
        f"{'tag':<{width}}  {'interventions':>13}  {'variants':>8}",
        f"{'(total)':<{width}}  {interventions:>13}  {variants:>8}",
    ]
    for tag in TAG_ORDER:
        variant_count = "-" if tag not in VARIANT_TAGS else per_variant[tag]
        intervention_count = "-" if tag in VARIANT_ONLY_TAGS else per_intervention[tag]
        lines.append(f"{tag:<{width}}  {intervention_count:>13}  {variant_count:>8}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The tagging run of tag_stage_3_data.py (`--list_tags`: print the tags instead)."""
    if args.list_tags:
        print(describe_tags())
        return 0
    output_dir = args.input if args.in_place else args.output
    per_intervention, per_variant, files, interventions, variants = tag_directory(
        args.input, output_dir, args.first_id_numeric, args.jobs
    )
    print(f"tagged {files} files ({variants} variants, {interventions} interventions) -> {display_path(output_dir)}")
    print(format_counts(per_intervention, per_variant, interventions, variants))
    return 0
