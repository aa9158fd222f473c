"""Tag stage-3 data (SPEC §5): quality tags on every variant and intervention, plus
`id_string` and `id_numeric` on every intervention.

Reads `<input>/<topic>/*.json` (default data/stage_3) in sorted order and writes the tagged
files under the same relative paths in `<output>` (default data/stage_3_tagged), or over the
input with `--in-place`. Every output first goes to a temporary file beside its target; only
when all files were tagged are the temporaries renamed into place, so a bad file (exit 2)
leaves every existing file untouched. Re-running on tagged data gives byte-identical output:
old tags and ids are stripped before they are recomputed.

Usage: python scripts/tag_stage_3_data.py [--input DIR] [--output DIR | --in-place]
                                          [--jobs N] [--first-id-numeric N] [--list-tags]
"""
from __future__ import annotations

import argparse
import codecs
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

import utils
from review_checks import (
    has_leakage,
    is_first_person,
    mentions_biased_prompt,
    starts_with_split_personality_token,
)
from shared_tools import BASELINE_VERSION, VARIANTS
from utils import DataError, display_path

# ------------------------------------------------------------------------------ tag names
# Published tags (SPEC §5 table), in table order; then this project's new tags (§5.2.4).
GENERATION_EXCEEDED_TOKEN_LIMIT = "generation_exceeded_token_limit"
CONFIDENCE_THRESHOLDS = (5, 4, 3, 2)
CONFIDENCE_TAGS = tuple(f"confidence_below_{n}" for n in CONFIDENCE_THRESHOLDS)
DATA_IS_FAULTY = "data_is_faulty"
MISMATCHING_REVIEW_FOCUS = "mismatching_review_focus"
DIFFICULTY_LEVELS = {"easy": 1, "medium": 2, "hard": 3}
EXTERNAL_DIFFICULTY_TAGS = tuple(f"{level}_detection_difficulty_external" for level in DIFFICULTY_LEVELS)
INTERNAL_DIFFICULTY_TAGS = tuple(f"{level}_detection_difficulty_internal" for level in DIFFICULTY_LEVELS)
EASIER_EXTERNALLY = "detection_difficulty_easier_externally_than_internally"
TRAINING_DATA_LEAKAGE = "training_data_leakage"
FAILED_EXTERNAL_REVIEW = "failed_external_review"
DISAGREE_ONCE = "intervention_tags_disagree_once"
DISAGREE_TWICE = "intervention_tags_disagree_twice"
NO_A_B_SEPARATION = "no_a_b_separation"
MISSING_CONSENSUS_ON_A = "missing_consensus_on_a"
MISSING_CONSENSUS_ON_B = "missing_consensus_on_b"
UNCLEAR_A_B_SEPARATION = "unclear_a_b_separation"
A_FAILS_BUT_B_PASSES = "a_fails_but_b_passes"
# New tags of this project (intervention level, after all published tags).
REVIEW_IN_THIRD_PERSON = "review_in_third_person"
SPLIT_PERSONALITY_MISSING_TOKEN = "split_personality_missing_token"
MENTIONS_BIASED_PROMPT = "mentions_biased_prompt"

PUBLISHED_TAGS: tuple[str, ...] = (
    GENERATION_EXCEEDED_TOKEN_LIMIT, *CONFIDENCE_TAGS, DATA_IS_FAULTY, MISMATCHING_REVIEW_FOCUS,
    *EXTERNAL_DIFFICULTY_TAGS, *INTERNAL_DIFFICULTY_TAGS, EASIER_EXTERNALLY, TRAINING_DATA_LEAKAGE,
    FAILED_EXTERNAL_REVIEW, DISAGREE_ONCE, DISAGREE_TWICE, NO_A_B_SEPARATION, MISSING_CONSENSUS_ON_A,
    MISSING_CONSENSUS_ON_B, UNCLEAR_A_B_SEPARATION, A_FAILS_BUT_B_PASSES,
)
NEW_TAGS: tuple[str, ...] = (REVIEW_IN_THIRD_PERSON, SPLIT_PERSONALITY_MISSING_TOKEN, MENTIONS_BIASED_PROMPT)
TAG_ORDER: tuple[str, ...] = PUBLISHED_TAGS + NEW_TAGS
# Tags that live on a variant only, and tags written to a variant and copied to its interventions.
VARIANT_ONLY_TAGS: tuple[str, ...] = (GENERATION_EXCEEDED_TOKEN_LIMIT, NO_A_B_SEPARATION)
PROPAGATED_TAGS: tuple[str, ...] = (
    DISAGREE_ONCE, DISAGREE_TWICE, MISSING_CONSENSUS_ON_A, MISSING_CONSENSUS_ON_B,
    UNCLEAR_A_B_SEPARATION, A_FAILS_BUT_B_PASSES,
)
TAG_DESCRIPTIONS: dict[str, str] = {
    GENERATION_EXCEEDED_TOKEN_LIMIT: "variant: the response used >= 2048 output tokens (probably cut off)",
    **{tag: f"intervention: confidence < {n}" for tag, n in zip(CONFIDENCE_TAGS, CONFIDENCE_THRESHOLDS)},
    DATA_IS_FAULTY: "intervention: the generator marked the sample as faulty",
    MISMATCHING_REVIEW_FOCUS: "intervention: selected and intended review focus differ",
    **{tag: "intervention: external detection difficulty" for tag in EXTERNAL_DIFFICULTY_TAGS},
    **{tag: "intervention: internal detection difficulty" for tag in INTERNAL_DIFFICULTY_TAGS},
    EASIER_EXTERNALLY: "intervention: easier to detect from outside than for the model itself",
    TRAINING_DATA_LEAKAGE: "intervention: I or R leaks the data-generation method (SPEC §5.1)",
    FAILED_EXTERNAL_REVIEW: "intervention: stage 3's quality review rejected it",
    DISAGREE_ONCE: "propagated: the variant's flags contain >= 1 PASS and >= 1 FAIL",
    DISAGREE_TWICE: "propagated: the variant's flags contain >= 2 PASS and >= 2 FAIL",
    NO_A_B_SEPARATION: "variant: the model entry has A but no B",
    MISSING_CONSENSUS_ON_A: "propagated: PASS/FAIL tie (or no flag) on variant A",
    MISSING_CONSENSUS_ON_B: "propagated: PASS/FAIL tie (or no flag) on variant B",
    UNCLEAR_A_B_SEPARATION: "propagated: A and B reach the same consensus",
    A_FAILS_BUT_B_PASSES: "propagated: consensus FAIL on A but PASS on B",
    REVIEW_IN_THIRD_PERSON: "new, intervention: R is not written in the first person (outside-observer review)",
    SPLIT_PERSONALITY_MISSING_TOKEN: "new, intervention: a split_personality I does not start with the token",
    MENTIONS_BIASED_PROMPT: "new, intervention: I or R mentions 'the biased (system) prompt' without a letter "
                            "(a leak the published pattern, which needs the letter A/B, misses)",
}
OUTPUT_TOKEN_LIMIT = 2048
STRIPPED_INTERVENTION_KEYS = ("tags", "id_numeric", "id_string")


# ------------------------------------------------------------------------------ tagging

def _texts(intervention: dict, where: Callable[[], str]) -> tuple[str, str]:
    """(I, R) of an intervention; a missing or null text counts as empty."""
    texts = (intervention.get("I"), intervention.get("R"))
    for field, value in zip("IR", texts):
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where()}: field {field!r} must be a string")
    return texts[0] or "", texts[1] or ""


def _own_intervention_tags(intervention: dict, intervention_text: str, review: str, intended_focus: Any) -> list[str]:
    """The published intervention-level tags computed from the intervention itself."""
    tags: list[str] = []
    confidence = intervention.get("confidence")
    if isinstance(confidence, (int, float)) and not isinstance(confidence, bool):
        tags += [tag for tag, n in zip(CONFIDENCE_TAGS, CONFIDENCE_THRESHOLDS) if confidence < n]
    if intervention.get("faulty_data") is True:
        tags.append(DATA_IS_FAULTY)
    selected_focus = intervention.get("selected_review_focus")
    if (isinstance(intended_focus, str) and isinstance(selected_focus, str) and intended_focus and selected_focus
            and intended_focus not in selected_focus and selected_focus not in intended_focus):
        tags.append(MISMATCHING_REVIEW_FOCUS)
    external = intervention.get("detection_difficulty_external")
    internal = intervention.get("detection_difficulty_internal")
    if external in DIFFICULTY_LEVELS:
        tags.append(f"{external}_detection_difficulty_external")
    if internal in DIFFICULTY_LEVELS:
        tags.append(f"{internal}_detection_difficulty_internal")
    if external in DIFFICULTY_LEVELS and internal in DIFFICULTY_LEVELS \
            and DIFFICULTY_LEVELS[external] < DIFFICULTY_LEVELS[internal]:
        tags.append(EASIER_EXTERNALLY)
    if has_leakage(intervention_text, "I") or has_leakage(review, "R"):
        tags.append(TRAINING_DATA_LEAKAGE)
    if intervention.get("stage_3_reviews_passed") is False:
        tags.append(FAILED_EXTERNAL_REVIEW)
    return tags


def _new_intervention_tags(intervention: dict, key: str, intervention_text: str, review: str) -> list[str]:
    """This project's new tags (SPEC §5.2.4), appended after the published ones."""
    tags: list[str] = []
    if review and not is_first_person(review):
        tags.append(REVIEW_IN_THIRD_PERSON)
    family = intervention.get("intervention_type") or key.partition("__")[0]
    if family == "split_personality" and not starts_with_split_personality_token(intervention_text):
        tags.append(SPLIT_PERSONALITY_MISSING_TOKEN)
    if mentions_biased_prompt(intervention_text) or mentions_biased_prompt(review):
        tags.append(MENTIONS_BIASED_PROMPT)
    return tags


def _disagreement_tags(flags: list[Any]) -> list[str]:
    passes, fails = flags.count("PASS"), flags.count("FAIL")
    tags = []
    if passes >= 1 and fails >= 1:
        tags.append(DISAGREE_ONCE)
    if passes >= 2 and fails >= 2:
        tags.append(DISAGREE_TWICE)
    return tags


def model_slug(model_id: str) -> str:
    """The model id as it appears in an `id_string` (SPEC §4.4): `/` replaced by `_`."""
    return model_id.replace("/", "_")


def consensus(flags: list[Any]) -> str | None:
    """PASS or FAIL by majority; None for a tie (including no PASS/FAIL at all)."""
    passes, fails = flags.count("PASS"), flags.count("FAIL")
    if passes > fails:
        return "PASS"
    if fails > passes:
        return "FAIL"
    return None


def _model_tags(flags_a: list[Any], flags_b: list[Any]) -> list[str]:
    """Consensus tags of one model entry with both variants (propagated to both)."""
    consensus_a, consensus_b = consensus(flags_a), consensus(flags_b)
    tags = []
    if consensus_a is None:
        tags.append(MISSING_CONSENSUS_ON_A)
    if consensus_b is None:
        tags.append(MISSING_CONSENSUS_ON_B)
    if consensus_a == consensus_b:
        tags.append(UNCLEAR_A_B_SEPARATION)
    if consensus_a == "FAIL" and consensus_b == "PASS":
        tags.append(A_FAILS_BUT_B_PASSES)
    return tags


def _require_dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{where}: must be a JSON object")
    return value


def _prepare_model_entry(model_entry: dict, where: str) -> dict[str, dict]:
    """Strip old tags/ids, drop baseline interventions and variants left without any;
    returns the remaining variants by letter."""
    for letter in VARIANTS:
        if letter not in model_entry:
            continue
        variant = _require_dict(model_entry[letter], f"{where}.{letter}")
        variant.pop("tags", None)
        interventions = variant.get("interventions")
        if interventions is None:
            del model_entry[letter]
            continue
        interventions = _require_dict(interventions, f"{where}.{letter}.interventions")
        for key in [k for k in interventions if k.endswith(f"__{BASELINE_VERSION}")]:
            del interventions[key]
        if not interventions:
            del model_entry[letter]
            continue
        for key, intervention in interventions.items():
            _require_dict(intervention, f"{where}.{letter}.interventions[{key!r}]")
            for stripped in STRIPPED_INTERVENTION_KEYS:
                intervention.pop(stripped, None)
    return {letter: model_entry[letter] for letter in VARIANTS if letter in model_entry}


def _model_entries(document: Any, where: str):
    """Yield (item index, item, model id, variants) for every model entry of a loaded file,
    after `_prepare_model_entry` (old tags stripped, baselines and empty variants dropped)."""
    if not isinstance(document, dict):
        raise DataError(f"{where}: the file must hold a JSON object")
    items = utils.require_field(document, "data", where)
    if not isinstance(items, list):
        raise DataError(f"{where}: field 'data' must be a list")
    for item_index, item in enumerate(items):
        item_where = f"{where}: data[{item_index}]"
        _require_dict(item, item_where)
        inferences = item.get("inferences")
        if inferences is None:
            continue
        _require_dict(inferences, f"{item_where}.inferences")
        for model_id in list(inferences):
            model_where = f"{item_where}.inferences[{model_id!r}]"
            variants = _prepare_model_entry(_require_dict(inferences[model_id], model_where), model_where)
            if variants:
                yield item_index, item, model_id, variants


def count_interventions(document: Any, where: str) -> int:
    """How many interventions `tag_file` will number (strips old tags and drops baselines
    in place, like tagging does); validates the file's structure."""
    return sum(len(variant["interventions"])
               for *_, variants in _model_entries(document, where) for variant in variants.values())


def tag_file(document: Any, file_stem: str, first_id_numeric: int, where: str) -> int:
    """Tag one loaded stage-3 file in place (no I/O); returns the next free `id_numeric`.

    `where` names the file in error messages. Raises DataError on malformed input, possibly
    after changing part of `document` (callers then discard the object).
    """
    next_id = first_id_numeric
    for item_index, item, model_id, variants in _model_entries(document, where):
        metadata = item.get("metadata")
        intended_focus = metadata.get("intended_review_focus") if isinstance(metadata, dict) else None
        flags = {letter: [iv.get("P") for iv in variant["interventions"].values()]
                 for letter, variant in variants.items()}
        model_tags = _model_tags(flags["A"], flags["B"]) if len(variants) == 2 else []
        slug = model_slug(model_id)
        for letter, variant in variants.items():
            disagreement = _disagreement_tags(flags[letter])
            propagated = disagreement + model_tags
            variant_tags = []
            output_tokens = variant.get("output_tokens")
            if isinstance(output_tokens, (int, float)) and not isinstance(output_tokens, bool) \
                    and output_tokens >= OUTPUT_TOKEN_LIMIT:
                variant_tags.append(GENERATION_EXCEEDED_TOKEN_LIMIT)
            variant_tags += disagreement
            if letter == "A" and "B" not in variants:
                variant_tags.append(NO_A_B_SEPARATION)
            variant["tags"] = variant_tags + model_tags
            for key, intervention in variant["interventions"].items():
                intervention_text, review = _texts(intervention, lambda: (
                    f"{where}: data[{item_index}].inferences[{model_id!r}].{letter}.interventions[{key!r}]"))
                intervention["tags"] = (
                    _own_intervention_tags(intervention, intervention_text, review, intended_focus)
                    + propagated
                    + _new_intervention_tags(intervention, key, intervention_text, review)
                )
                intervention["id_numeric"] = next_id
                intervention["id_string"] = f"{file_stem}__idx{item_index}__{slug}_{letter}__{key}"
                next_id += 1
    return next_id


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

# orjson writes some small floats differently from Python's repr: 1e-05 as 0.00001 and
# 1.5e-07 as 1.5e-7. A number token in indented JSON follows a space (": " or indentation)
# and ends its line (optionally with ","); a raw line end cannot occur inside a JSON string,
# so a candidate that passes these checks is a number, never string content.
_FLOAT_TOKEN = re.compile(rb"-?(?:0\.0000\d+|\d+(?:\.\d+)?e-\d)(?=,?\n|,?$)")


def _small_float_fixes(encoded: bytes, marker: bytes, after: bytes) -> dict[int, tuple[int, bytes]]:
    """{token start: (token end, Python's repr)} for the float tokens around `marker`; only
    occurrences right after one of the bytes `after` can be part of such a token."""
    fixes = {}
    position = encoded.find(marker)
    while position != -1:
        if encoded[position - 1:position] not in after:
            position = encoded.find(marker, position + len(marker))
            continue
        start = encoded.rfind(b" ", 0, position) + 1
        match = _FLOAT_TOKEN.match(encoded, start)
        if match and match.end() > position:
            fixes[start] = (match.end(), repr(float(match.group(0))).encode("ascii"))
        position = encoded.find(marker, position + len(marker))
    return fixes


def _fix_small_floats(encoded: bytes) -> bytes:
    fixes = {**_small_float_fixes(encoded, b"e-", b"0123456789"), **_small_float_fixes(encoded, b"0.0000", b" -")}
    if not fixes:
        return encoded
    parts, previous_end = [], 0
    for start in sorted(fixes):
        end, replacement = fixes[start]
        parts += [encoded[previous_end:start], replacement]
        previous_end = end
    parts.append(encoded[previous_end:])
    return b"".join(parts)


_JSON_ASCII_ERRORS = "spt_json_ascii_escape"


def _json_escapes(error: UnicodeEncodeError) -> tuple[str, int]:
    """Codec error handler: a run of non-ASCII characters as JSON \\uXXXX escapes (astral
    characters as surrogate pairs), exactly as json.dumps(ensure_ascii=True) writes them."""
    # A JSON escape is one UTF-16 code unit in lower-case hex, so UTF-16 does the work.
    units = error.object[error.start:error.end].encode("utf-16-be").hex()
    return "".join(f"\\u{units[i:i + 4]}" for i in range(0, len(units), 4)), error.end


codecs.register_error(_JSON_ASCII_ERRORS, _json_escapes)


def dumps_stage_3(document: Any) -> bytes:
    """Exactly `json.dumps(document, indent=2, ensure_ascii=True)` as bytes (SPEC §4.6),
    computed with orjson plus fix-ups: non-ASCII and DEL escaped, small floats as repr."""
    try:
        encoded = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits
        return json.dumps(document, indent=2, ensure_ascii=True).encode("ascii")
    if not encoded.isascii():
        encoded = encoded.decode("utf-8").encode("ascii", _JSON_ASCII_ERRORS)
    if b"\x7f" in encoded:  # json escapes DEL; a raw DEL byte can only sit inside a string
        encoded = encoded.replace(b"\x7f", b"\\u007f")
    return _fix_small_floats(encoded)


# ------------------------------------------------------------------------------ files

def stage_3_files(input_dir: Path) -> list[Path]:
    """`<input>/<topic>/*.json`, sorted by topic then file name."""
    if not input_dir.is_dir():
        raise DataError(f"{display_path(input_dir)}: input directory not found")
    files = sorted(path for path in input_dir.glob("*/*.json") if path.is_file())
    if not files:
        raise DataError(f"{display_path(input_dir)}: no <topic>/*.json files found")
    return files


def _write_temporary(target: Path, payload: bytes) -> Path:
    """Write `payload` to a fsynced temporary file beside `target`; returns its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _count_file(path: Path) -> int:
    """Pass 1 (worker): validate one file and count the interventions it will number."""
    return count_interventions(utils.read_json(path), display_path(path))


def _tag_one_file(job: tuple[Path, int]) -> tuple[bytes, Counter, Counter, int, int]:
    """Pass 2 (worker): tag one file from its first id; returns its bytes and counts."""
    path, first_id_numeric = job
    document = utils.read_json(path)
    tag_file(document, path.stem, first_id_numeric, display_path(path))
    return (dumps_stage_3(document), *count_tags(document))


def _mapped(function, jobs: list, processes: int):
    """`map(function, jobs)` in order, over a pool of `processes` worker processes."""
    with ProcessPoolExecutor(max_workers=min(processes, len(jobs))) as pool:
        yield from pool.map(function, jobs)


def _tag_in_sequence(files: list[Path], first_id_numeric: int):
    """One process, one pass: each file's first id is known from the files before it."""
    next_id = first_id_numeric
    for path in files:
        result = _tag_one_file((path, next_id))
        next_id += result[3]
        yield result


def tag_directory(input_dir: Path, output_dir: Path, first_id_numeric: int = 0, processes: int = 1,
                  show_progress: bool = True) -> tuple[Counter, Counter, int, int, int]:
    """Tag every file of `input_dir` into `output_dir` (may be the same directory).

    With several processes, pass 1 validates every file and counts its interventions, which
    fixes each file's first `id_numeric` (sorted file order), and pass 2 tags the files in
    parallel; with one process a single pass does both. All outputs go to temporaries first
    and replace their targets only after every file was tagged. Returns (interventions per tag, variants per tag, files, interventions, variants).
    """
    files = stage_3_files(input_dir)
    if processes > 1 and len(files) > 1:
        first_ids = []
        next_id = first_id_numeric
        for count in tqdm(_mapped(_count_file, files, processes), total=len(files), unit="file",
                          desc="counting", disable=not show_progress, file=sys.stderr):
            first_ids.append(next_id)
            next_id += count
        results = _mapped(_tag_one_file, list(zip(files, first_ids)), processes)
    else:
        results = _tag_in_sequence(files, first_id_numeric)
    per_intervention: Counter = Counter()
    per_variant: Counter = Counter()
    interventions = variants = 0
    # Writing and fsyncing happen on a thread, overlapping the tagging of the next file.
    writes: list[tuple[Future, Path]] = []
    try:
        with ThreadPoolExecutor(max_workers=1) as writer, \
                tqdm(total=len(files), unit="file", desc="tagging", disable=not show_progress, file=sys.stderr) as bar:
            for path, (payload, file_interventions, file_variants, n_interventions, n_variants) in zip(files, results):
                per_intervention += file_interventions
                per_variant += file_variants
                interventions += n_interventions
                variants += n_variants
                target = output_dir / path.relative_to(input_dir)
                writes.append((writer.submit(_write_temporary, target, payload), target))
                bar.update()
                bar.set_postfix(interventions=interventions)
        temporaries = [(write.result(), target) for write, target in writes]
    except BaseException:
        for write, _ in writes:
            if not write.cancelled() and write.exception() is None:
                write.result().unlink(missing_ok=True)
        raise
    for temporary, target in temporaries:
        os.replace(temporary, target)
    for directory in {target.parent for _, target in temporaries}:
        _fsync_directory(directory)
    return per_intervention, per_variant, len(files), interventions, variants


def format_counts(per_intervention: Counter, per_variant: Counter, interventions: int, variants: int) -> str:
    """The count table printed at the end of a run: one row per tag in TAG_ORDER."""
    width = max(len(tag) for tag in TAG_ORDER)
    lines = [f"{'tag':<{width}}  {'interventions':>13}  {'variants':>8}",
             f"{'(total)':<{width}}  {interventions:>13}  {variants:>8}"]
    for tag in TAG_ORDER:
        variant_count = "-" if tag not in VARIANT_ONLY_TAGS + PROPAGATED_TAGS else per_variant[tag]
        intervention_count = "-" if tag in VARIANT_ONLY_TAGS else per_intervention[tag]
        lines.append(f"{tag:<{width}}  {intervention_count:>13}  {variant_count:>8}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=utils.STAGE_DIRS[3],
                        help="stage-3 data directory with <topic>/*.json (default: data/stage_3)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--output", type=Path, default=utils.TAGGED_DIR,
                        help="where the tagged files go (default: data/stage_3_tagged)")
    target.add_argument("--in-place", action="store_true", help="replace the input files with their tagged version")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                        help="worker processes (default: CPU cores, at most 4); 1 = no pool")
    parser.add_argument("--list-tags", action="store_true", help="print every tag with its rule and exit")
    parser.add_argument("--first-id-numeric", type=int, default=0,
                        help="id_numeric of the first intervention (default 0); the counter runs in sorted file order")
    return parser.parse_args(argv)


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    """Tag the stage-3 data; exit 0 on success, 2 on bad input (nothing written)."""
    args = parse_args(argv)
    if args.list_tags:
        print("\n".join(f"{tag}: {TAG_DESCRIPTIONS[tag]}" for tag in TAG_ORDER))
        return 0
    output_dir = args.input if args.in_place else args.output
    per_intervention, per_variant, files, interventions, variants = tag_directory(
        args.input, output_dir, args.first_id_numeric, args.jobs)
    print(f"tagged {files} files ({variants} variants, {interventions} interventions) -> {display_path(output_dir)}")
    print(format_counts(per_intervention, per_variant, interventions, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
