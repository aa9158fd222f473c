"""The verdict file of the prompt-removal eligibility judge and the one rule the export applies.

File (config key `eligibility_file`, default data/prompt_eligibility.json; docs/data_formats.md §6):
`{"verdicts": {<id_string>: record}}`, one record per judged review sample: the judge's answer
(`explanation`, `review_names_system_prompt`, `verdict_reachable_without_prompt`), `eligible`,
`sample_sha256` (what the judge saw), `judge_model`, `judge_provider`, `prompt_sha256`,
`judged_at`. Eligible: I and R do not name the system prompt and the verdict is reachable from T
and S alone (this project's rule, prompts/eligibility/judge.md).

`mark_citing(samples, config)` sets each selected sample's `_needs_system_prompt`, which the
shortcut mitigations read (export.shortcuts): with `eligibility_source` "regex" (default) the
regex rule `cites_system_prompt`, with "llm" not `eligible` from the verdict file, where every
sample must have a verdict for its current texts (else DataError naming the file, the count and
the command to run). Reads the verdict file; `save_verdicts` writes it atomically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spt import utils
from spt.eligibility.requests import ANSWER_FIELDS, sample_sha256
from spt.export.shortcuts import cites_system_prompt
from spt.utils import DataError, display_path

REGEX, LLM = "regex", "llm"
ELIGIBILITY_SOURCES = (REGEX, LLM)
JUDGE_SCRIPT = "scripts/judge_prompt_eligibility.py"


def is_eligible(answer: dict) -> bool:
    """May the sample lose its system prompt: the review does not name it, and the verdict is
    reachable without it."""
    return not answer["review_names_system_prompt"] and answer["verdict_reachable_without_prompt"]


def verdict_record(answer: dict, sample: dict, *, judge_model: str, provider: str, hashes: dict[str, str]) -> dict:
    """The stored verdict of one sample from the judge's validated answer."""
    return {
        **{key: answer[key] for key in ANSWER_FIELDS},
        "eligible": is_eligible(answer),
        "sample_sha256": sample_sha256(sample),
        "judge_model": judge_model,
        "judge_provider": provider,
        "prompt_sha256": hashes,
        "judged_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def refused_record(refusal: str, sample: dict, *, judge_model: str, provider: str, hashes: dict[str, str]) -> dict:
    """The stored verdict of a sample whose judge call the judge model refused: not eligible (the
    sample keeps its system prompt, as when in doubt), marked `refused`; --force asks again."""
    return {
        "refused": True,
        "refusal": refusal,
        "eligible": False,
        "sample_sha256": sample_sha256(sample),
        "judge_model": judge_model,
        "judge_provider": provider,
        "prompt_sha256": hashes,
        "judged_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def load_verdicts(path: Path, missing_ok: bool = False) -> dict[str, dict]:
    """id_string -> record; a file that is absent (unless `missing_ok`) or not of this shape is a DataError."""
    where = display_path(path)
    if not path.is_file():
        if missing_ok:
            return {}
        raise DataError(
            f"{where}: no eligibility verdict file (config key 'eligibility_file'); "
            f"run python {JUDGE_SCRIPT} first, or set 'eligibility_source' to {REGEX!r}"
        )
    document = utils.read_json(path)
    verdicts = document.get("verdicts") if isinstance(document, dict) else None
    if not isinstance(verdicts, dict):
        raise DataError(f"{where}: expected an object with a 'verdicts' object")
    for id_string, record in verdicts.items():
        if not (
            isinstance(record, dict)
            and isinstance(record.get("eligible"), bool)
            and isinstance(record.get("sample_sha256"), str)
        ):
            raise DataError(
                f"{where}: verdicts[{id_string!r}]: expected an object with a boolean 'eligible' "
                "and a string 'sample_sha256'"
            )
    return verdicts


def save_verdicts(path: Path, verdicts: dict[str, dict]) -> None:
    utils.atomic_write_json(path, {"verdicts": dict(sorted(verdicts.items()))})


def current_verdict(verdicts: dict[str, dict], sample: dict) -> dict | None:
    """The sample's verdict when it was made for the sample's present texts, else None."""
    record = verdicts.get(sample["id_string"])
    return record if record is not None and record["sample_sha256"] == sample_sha256(sample) else None


def regex_cites(sample: dict) -> bool:
    """export.shortcuts' rule on one selected sample: I or R names or quotes a system prompt of its item."""
    return cites_system_prompt(sample["I"], sample["R"], [sample["system_prompt"], sample["_other_prompt"]])


def mark_citing(samples: list[dict], config: dict[str, Any]) -> None:
    """Set `_needs_system_prompt` on every selected sample (before any mitigation), by the config's
    `eligibility_source`."""
    if config["eligibility_source"] == REGEX:
        for sample in samples:
            sample["_needs_system_prompt"] = regex_cites(sample)
        return
    path = utils.data_path(config["eligibility_file"])
    verdicts = load_verdicts(path)
    missing = [sample["id_string"] for sample in samples if current_verdict(verdicts, sample) is None]
    if missing:
        raise DataError(
            f"{display_path(path)}: {len(missing)} of {len(samples)} selected samples have no verdict for "
            f"their present texts (first: {missing[0]}); run python {JUDGE_SCRIPT} with this config"
        )
    for sample in samples:
        sample["_needs_system_prompt"] = not verdicts[sample["id_string"]]["eligible"]
