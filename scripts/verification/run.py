"""The run that scripts/verify_ab_factors.py starts: `run(args)` with its parsed flags.

Loads the stage-2 files of the chosen topics (checked: a bad file or field is a one-line
DataError), marks items without B as not applicable, and lists one `JudgeCase` per (item with B,
target model that answered both A and B). A model verdict already stored with the same judge
model, prompt files and answer counts is kept (its `verified` recomputed with this run's
--min_consistency) unless --force. Then either prints the dry run, or sends every judge call
through the provider layer (response cache, --max_cost, --batch_api, progress bar with tokens and
cost), stores each verdict on its item (verification.verdict) and saves the file atomically
after every answer, writes each topic's feedback file for stage 1 (verification.feedback) and
prints the summary. Reads and writes data/stage_2/<topic>/*.json (in place, unknown keys kept)
and writes data/stage_1_feedback/<topic>.json. Returns the exit code: 0 complete, 1 some judge
calls failed (the next run retries them), 3 stopped by --max_cost (2, bad input, is a DataError).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import stage_files
import utils
from providers import CostLimitReached, ProviderError, Refused, check_flags, client_from_args, provider_for_model
from providers.dry_run import dry_run_lines
from stage_3.summary import usage_line
from verification import feedback
from verification.requests import JudgeCase, answer_problems, judge_request, prompt_hashes, variant_answers
from verification.verdict import (FIELD, NOT_APPLICABLE, is_current, item_verdict, model_verdict, recomputed,
                                  refused_verdict)

log = logging.getLogger("spt.verification")

EXIT_COMPLETE, EXIT_FAILURES, EXIT_COST_LIMIT = 0, 1, 3


@dataclass
class Document:
    """One stage-2 file, verified in place."""
    topic: str
    path: Path
    doc: dict

    @property
    def stem(self) -> str:
        return self.path.stem

    def save(self) -> None:
        utils.atomic_write_json(self.path, self.doc)


@dataclass
class Counts:
    not_applicable: int = 0
    kept: int = 0              # model verdicts already current
    judged: int = 0
    refused: int = 0           # judge calls the judge model refused (stored as refused verdicts)
    failed: int = 0
    not_finished: int = 0      # left by --max_cost
    unanswered: int = 0        # (item, model) pairs with B whose A or B answer stage 2 has not given yet
    failures: list[str] = field(default_factory=list)


def _check_entry(entry: object, where: str) -> None:
    if not isinstance(entry, dict):
        raise utils.DataError(f"{where}: expected an object")
    if "S" in entry and not isinstance(entry["S"], str):
        raise utils.DataError(f"{where}: field 'S' must be a string")
    samples = entry.get("samples")
    if samples is not None and not (isinstance(samples, list) and samples
                                    and all(isinstance(s, dict) and isinstance(s.get("S"), str) for s in samples)):
        raise utils.DataError(f"{where}: field 'samples' must be a non-empty list of objects with a string 'S'")


def load_documents(names: list[str]) -> list[Document]:
    paths = stage_files.batch_files(2, names)
    if not paths:
        raise utils.DataError(f"{utils.display_path(utils.STAGE_DIRS[2])}: no stage-2 files for {', '.join(names)}")
    documents = []
    for path in paths:
        doc = stage_files.load_batch(path)
        where = utils.display_path(path)
        if doc["topic"] != path.parent.name:
            raise utils.DataError(f"{where}: topic {doc['topic']!r} does not match its folder {path.parent.name!r}")
        for index, item in enumerate(doc["data"]):
            for model_id, variants in item.get("inferences", {}).items():
                for variant, entry in variants.items():
                    _check_entry(entry, f"{where}: data[{index}].inferences[{model_id!r}][{variant!r}]")
            verdict = item.get(FIELD)
            if verdict is not None and not (isinstance(verdict, dict)
                                            and isinstance(verdict.get("by_model", {}), dict)):
                raise utils.DataError(f"{where}: data[{index}].{FIELD}: expected an object with a 'by_model' object")
        documents.append(Document(path.parent.name, path, doc))
    return documents


def answered(variants: dict, variant: str) -> bool:
    entry = variants.get(variant)
    return isinstance(entry, dict) and isinstance(entry.get("S"), str)


def plan_cases(documents: list[Document], args: argparse.Namespace, hashes: dict, counts: Counts) -> list:
    """(document, JudgeCase) for every judge call to make; sets the verdict of every item that
    needs none (no B, or only current model verdicts)."""
    cases = []
    for document in documents:
        for index, item in enumerate(document.doc["data"]):
            if "B" not in stage_files.item_variants(item):
                item[FIELD] = dict(NOT_APPLICABLE)
                counts.not_applicable += 1
                continue
            by_model = (item.get(FIELD) or {}).get("by_model", {})
            for model_id, variants in item.get("inferences", {}).items():
                if args.stage2_model and model_id not in args.stage2_model:
                    continue
                if not (answered(variants, "A") and answered(variants, "B")):
                    counts.unanswered += 1
                    continue
                case = JudgeCase(document.stem, index, model_id, item,
                                 {variant: variant_answers(variants[variant]) for variant in ("A", "B")})
                num_samples = {variant: case.count(variant) for variant in ("A", "B")}
                if not args.force and is_current(by_model.get(model_id), args.model, hashes, num_samples):
                    by_model[model_id] = recomputed(by_model[model_id], args.min_consistency)
                    counts.kept += 1
                else:
                    cases.append((document, case))
            if by_model:
                item[FIELD] = item_verdict(by_model, args.min_consistency)
    return cases


def store(document: Document, case: JudgeCase, record: dict, min_consistency: float) -> None:
    item = case.item
    by_model = dict((item.get(FIELD) or {}).get("by_model", {}))
    by_model[case.model_id] = record
    item[FIELD] = item_verdict(by_model, min_consistency)
    document.save()


async def judge_all(cases: list, args: argparse.Namespace, hashes: dict, counts: Counts) -> tuple[bool, list]:
    """Send every judge call; (stopped by --max_cost, the clients used)."""
    stopped = False
    async with client_from_args(args, model=args.model) as client:
        bar = client.progress_bar(total=len(cases), desc="verification")

        async def judge(document: Document, case: JudgeCase) -> None:
            nonlocal stopped
            if stopped:
                counts.not_finished += 1
                return
            try:
                response = await client.complete(judge_request(args.model, document.topic, case),
                                                 validate=answer_problems(case.count("A"), case.count("B")))
            except CostLimitReached:
                stopped = True
                counts.not_finished += 1
                return
            except Refused as error:      # an outcome, never re-asked: a refused verdict, neither pass nor fail
                store(document, case, refused_verdict(error.text, judge_model=args.model, provider=client.provider,
                                                      hashes=hashes), args.min_consistency)
                counts.refused += 1
                log.warning("%s: the judge refused: %s", case.label, error)
                bar.update(1)
                return
            except ProviderError as error:
                if error.fatal:
                    raise
                counts.failed += 1
                counts.failures.append(f"{case.label}: {error}")
                log.warning("%s: judge call failed: %s", case.label, error)
                return
            record = model_verdict(response.tool_input, judge_model=args.model, provider=client.provider,
                                   hashes=hashes, min_consistency=args.min_consistency)
            store(document, case, record, args.min_consistency)
            counts.judged += 1
            bar.update(1)

        await asyncio.gather(*(judge(document, case) for document, case in cases))
        bar.close()
    return stopped, [client]


def dry_run(cases: list, args: argparse.Namespace) -> None:
    provider = args.provider or provider_for_model(args.model)
    if not cases:
        print("verification dry run: nothing to do")
        return
    requests = [judge_request(args.model, document.topic, case) for document, case in cases]
    print(f"verification dry run: {len(requests)} judge call(s)")
    # One kind of call: dry_run_lines' estimate is already the total.
    print("\n".join(dry_run_lines("causal verification", requests, provider, args.base_url,
                                  full=args.dry_run == "full")))


def summary_lines(documents: list[Document], counts: Counts, clients: list) -> list[str]:
    items = [item for document in documents for item in document.doc["data"]]
    judged = [item[FIELD] for item in items
              if (item.get(FIELD) or {}).get("applicable") and item[FIELD].get("verified") is not None]
    verified = sum(verdict["verified"] for verdict in judged)
    lines = [f"verification: {counts.judged} judge call(s) answered, {counts.kept} verdict(s) kept from earlier runs, "
             f"{counts.failed} failed, {counts.refused} refused by the judge, {counts.not_finished} left for the next run",
             f"  items with B judged: {len(judged)}, verified {verified}, not verified {len(judged) - verified}; "
             f"{counts.not_applicable} without B (not applicable, pass through)"]
    if counts.unanswered:
        lines.append(f"  {counts.unanswered} (item, model) pair(s) skipped: stage 2 has not answered both A and B")
    if clients:
        lines.append("  " + usage_line(clients))
    return lines


def run(args: argparse.Namespace) -> int:
    if not 0 < args.min_consistency <= 1:
        raise utils.DataError(f"--min_consistency must be above 0 and at most 1, got {args.min_consistency}")
    check_flags(args, args.model)
    utils.setup_logging(args.verbose)
    documents = load_documents(args.names)
    answering = list(dict.fromkeys(model for document in documents for item in document.doc["data"]
                                   for model in item.get("inferences", {})))
    unknown = [model for model in args.stage2_model or [] if model not in answering]
    if unknown:
        raise utils.DataError(f"--stage2_model {', '.join(unknown)}: no answers in the stage-2 data of "
                              f"{', '.join(args.names)}; the models there: {', '.join(answering) or 'none'}")
    hashes = prompt_hashes()
    counts = Counts()
    cases = plan_cases(documents, args, hashes, counts)
    if args.dry_run:
        dry_run(cases, args)
        return EXIT_COMPLETE
    stopped, clients = False, []
    if cases:
        try:
            stopped, clients = asyncio.run(judge_all(cases, args, hashes, counts))
        except ProviderError as error:      # a missing key, a model that is gone, an exhausted quota
            raise utils.DataError(str(error)) from None
    for document in documents:          # the not-applicable marks and recomputed verdicts
        document.save()
    for topic in dict.fromkeys(document.topic for document in documents):
        path = feedback.write_topic_feedback(
            topic, [item for document in documents if document.topic == topic for item in document.doc["data"]])
        log.info("wrote %s", utils.display_path(path))
    print("\n".join(summary_lines(documents, counts, clients)))
    for failure in counts.failures[:5]:
        print(f"  failed: {failure}", file=sys.stderr)
    if stopped:
        print(f"stopped: --max_cost {args.max_cost} reached; rerun to continue", file=sys.stderr)
        return EXIT_COST_LIMIT
    return EXIT_FAILURES if counts.failed or counts.not_finished else EXIT_COMPLETE
