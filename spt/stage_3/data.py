"""Stage-3 data files: what to read, what is still to do, and where results go.

`load_documents(names, target_models)` reads, for every stage-2 file of the chosen topics, the
stage-3 file of the same name when it exists (else the stage-2 file), adds target-model answers
that stage 2 has gained since (and the stage-2 item's `causal_verification`), checks every
field stage 3 relies on (one-line DataError naming file and field) and refuses a --stage2_model
with no answers in them (naming the models there). `pending_samples` lists the answered variants (stage 2 stores failed
answers without S) whose intervention key is missing or holds an ERROR record; `check_version_label` refuses to extend a version label that was
written with different prompt files. `Stage3Document.save()` writes the stage-3 file
atomically (unknown keys preserved, docs/data_formats.md §4.6 serialisation). Reads stage-2/3 files, writes
stage-3 files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spt import stage_files, utils
from spt.shared_tools import BASELINE_VERSION, ERROR_FLAG, VARIANTS, intervention_key
from spt.stage_3.requests import Sample
from spt.verification.verdict import FIELD as VERIFICATION_FIELD


@dataclass
class Stage3Document:
    """One batch file on its way from stage 2 to stage 3."""

    topic: str
    source_path: Path  # the file read: the stage-3 file when it exists, else the stage-2 file
    output_path: Path
    doc: dict
    verdicts_changed: bool = False  # a stage-2 causal_verification verdict replaced the stage-3 file's

    @property
    def stem(self) -> str:
        return self.output_path.stem

    def save(self) -> None:
        utils.atomic_write_json(self.output_path, self.doc, ensure_ascii=True)


def _check_inferences(doc: dict, where: str, target_models: list[str] | None) -> None:
    for index, item in enumerate(doc["data"]):
        verdict = item.get(VERIFICATION_FIELD)
        refused = isinstance(verdict, dict) and verdict.get("refused") is True and verdict.get("verified") is None
        if verdict is not None and not (
            isinstance(verdict, dict) and isinstance(verdict.get("verified"), bool) or refused
        ):
            raise utils.DataError(
                f"{where}: data[{index}].{VERIFICATION_FIELD}: expected an object with a "
                f"boolean 'verified' (null only in a refused verdict)"
            )
        for model_id, variants in item.get("inferences", {}).items():
            if target_models and model_id not in target_models:
                continue
            for variant, entry in variants.items():
                field_where = f"{where}: data[{index}].inferences[{model_id!r}][{variant!r}]"
                if variant not in VARIANTS:
                    raise utils.DataError(f"{field_where}: unknown variant (expected A or B)")
                if not isinstance(entry, dict) or not isinstance(entry.get("S", ""), str):
                    raise utils.DataError(f"{field_where}: field 'S' must be a string")
                if variant not in stage_files.item_variants(item):
                    raise utils.DataError(f"{field_where}: an answer under B, but the item has no B prompt")
                if not isinstance(entry.get("interventions", {}), dict):
                    raise utils.DataError(f"{field_where}: field 'interventions' must be an object")


def _add_new_answers(stage_3_doc: dict, stage_2_doc: dict, where: str) -> bool:
    """Copy target-model answers that stage 2 has and the stage-3 file lacks (never overwrite), and
    the stage-2 item's causal-verification verdict (the verification writes it there); whether a
    verdict changed."""
    if len(stage_2_doc["data"]) != len(stage_3_doc["data"]):
        raise utils.DataError(
            f"{where}: has {len(stage_3_doc['data'])} items but its stage-2 file has {len(stage_2_doc['data'])}"
        )
    changed = False
    for item_3, item_2 in zip(stage_3_doc["data"], stage_2_doc["data"]):
        if VERIFICATION_FIELD in item_2 and item_3.get(VERIFICATION_FIELD) != item_2[VERIFICATION_FIELD]:
            item_3[VERIFICATION_FIELD] = item_2[VERIFICATION_FIELD]
            changed = True
        inferences = item_3.setdefault("inferences", {})
        for model_id, variants in item_2.get("inferences", {}).items():
            for variant, entry in variants.items():
                inferences.setdefault(model_id, {}).setdefault(variant, entry)
    return changed


def load_document(stage_2_path: Path, target_models: list[str] | None) -> Stage3Document:
    output_path = stage_files.stage_path(stage_2_path, 3)
    stage_2_doc = stage_files.load_batch(stage_2_path)
    source_path = output_path if output_path.exists() else stage_2_path
    where = utils.display_path(source_path)
    verdicts_changed = False
    if output_path.exists():
        doc = stage_files.load_batch(output_path)
        verdicts_changed = _add_new_answers(doc, stage_2_doc, where)
    else:
        doc = stage_2_doc
    topic = stage_2_path.parent.name
    if doc["topic"] != topic:
        raise utils.DataError(f"{where}: topic {doc['topic']!r} does not match its folder {topic!r}")
    _check_inferences(doc, where, target_models)
    return Stage3Document(topic, source_path, output_path, doc, verdicts_changed)


def load_documents(names: list[str], target_models: list[str] | None) -> list[Stage3Document]:
    """Every stage-3 document of the chosen topics, in sorted file order."""
    paths = stage_files.batch_files(2, names)
    if not paths:
        raise utils.DataError(f"{utils.display_path(utils.STAGE_DIRS[2])}: no stage-2 files for {', '.join(names)}")
    documents = [load_document(path, target_models) for path in paths]
    _check_target_models(documents, target_models, names)
    return documents


def _check_target_models(documents: list[Stage3Document], target_models: list[str] | None, names: list[str]) -> None:
    """Every --stage2_model must have answers in the chosen topics (a typo is not 'nothing to do')."""
    answering = list(dict.fromkeys(model for document in documents for model in target_models_of(document, None)))
    unknown = [model for model in target_models or [] if model not in answering]
    if unknown:
        raise utils.DataError(
            f"--stage2_model {', '.join(unknown)}: no answers in the stage-2 data of "
            f"{', '.join(names)}; the models there: {', '.join(answering) or 'none'}"
        )


def target_models_of(document: Stage3Document, target_models: list[str] | None) -> list[str]:
    """The target models answering in `document`, in first-seen order (filtered by --stage2_model)."""
    seen: dict[str, None] = {}
    for item in document.doc["data"]:
        for model_id in item.get("inferences", {}):
            if not target_models or model_id in target_models:
                seen.setdefault(model_id)
    return list(seen)


def is_pending(interventions: dict, key: str) -> bool:
    record = interventions.get(key)
    return not isinstance(record, dict) or record.get("P") == ERROR_FLAG


def pending_samples(document: Stage3Document, item_indices: list[int], model_id: str, key: str) -> list[Sample]:
    """The variants of these items answered by `model_id` that still need the intervention `key`."""
    samples = []
    for index in item_indices:
        item = document.doc["data"][index]
        for variant in VARIANTS:
            entry = item.get("inferences", {}).get(model_id, {}).get(variant)
            answered = entry is not None and isinstance(entry.get("S"), str)  # stage 2 may have failed it
            if answered and is_pending(entry.get("interventions", {}), key):
                samples.append(Sample(document.stem, index, model_id, variant, item))
    return samples


def store_intervention(sample: Sample, key: str, record: dict) -> None:
    sample.inference.setdefault("interventions", {})[key] = record


def check_version_label(
    documents: list[Stage3Document], intervention_type: str, version: str, hashes_by_topic: dict[str, dict[str, str]]
) -> None:
    """Refuse to add to `<type>__<version>` where it was written with other prompt files."""
    if version == BASELINE_VERSION:
        return
    key = intervention_key(intervention_type, version)
    for document in documents:
        current = hashes_by_topic[document.topic]
        for index, item in enumerate(document.doc["data"]):
            for model_id, variants in item.get("inferences", {}).items():
                for variant, entry in variants.items() if isinstance(variants, dict) else ():
                    interventions = entry.get("interventions") if isinstance(entry, dict) else None
                    record = interventions.get(key) if isinstance(interventions, dict) else None
                    if not isinstance(record, dict) or record.get("prompt_sha256") == current:
                        continue
                    recorded = record.get("prompt_sha256") or {}
                    changed = sorted(
                        name for name in set(current) | set(recorded) if current.get(name) != recorded.get(name)
                    )
                    what = f"prompt file(s) changed: {', '.join(changed)}" if recorded else "no prompt hash recorded"
                    raise utils.DataError(
                        f"{utils.display_path(document.source_path)}: data[{index}] {model_id} {variant} already has "
                        f"{key} written with other prompts ({what}); choose a new --intervention_modification "
                        f"or pass --force"
                    )
