"""The run that scripts/verify_ab_factors.py starts: `run(args)` with its parsed flags.

Refuses --num_samples below 3 (one line, exit 2). Loads the stage-2 files of the chosen topics
(checked: a bad file or field is a one-line DataError), marks items without B as not applicable,
and plans, per item with B, one factor-label call and one blind `JudgeCase` per target model that
answered both A and B, with the first K = --num_samples answers of each (an answer with fewer
samples is a one-line DataError: rerun stage 2 with --num_samples K). A record already stored
with the same judge model, prompt files and answer counts is kept (its verdict recomputed at
this run's --alpha) unless --force. Then either prints the dry run, or sends every call through
the provider layer (response cache, --max_cost, --batch_api, progress bar with tokens and cost),
stores each answer on its item (verification.verdict; a call the judge model refuses, an
outcome never re-asked, as a refused record, kept by a rerun like any other) and saves the file
atomically after every answer (stage_files.save_merged: only `causal_verification` is ours, the
answers stage 2 wrote meanwhile stay), writes each topic's feedback file for stage 1
(verification.feedback) and prints the summary. Reads and writes data/stage_2/<topic>/*.json (in
place, unknown keys kept) and writes data/stage_1_feedback/<topic>.json. Returns the exit code:
0 complete (refusals included), 1 some calls failed (the next run retries them), 3 stopped by
--max_cost (2, bad input, is a DataError).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from spt import stage_files, utils
from spt.providers import ProviderError, check_flags, client_from_args, estimate_cost, provider_for_model
from spt.providers.dry_run import cost_summary, dry_run_lines
from spt.providers.sending import EXIT_COMPLETE, finish, send_each
from spt.providers.summary import usage_line
from spt.verification import feedback
from spt.verification.requests import (
    JudgeCase,
    answer_problems,
    factor_hashes,
    factor_request,
    judge_hashes,
    judge_request,
    variant_answers,
)
from spt.verification.verdict import (
    FIELD,
    NOT_APPLICABLE,
    factor_record,
    is_current,
    is_judged,
    is_refused,
    item_verdict,
    model_verdict,
    recomputed,
    refused_record,
)

log = logging.getLogger("spt.verification")

MIN_SAMPLES = 3  # answers per prompt below which no test can tell an effect from chance


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
        """Save the verdicts, merged with the answers stage 2 (of any model) wrote meanwhile."""
        stage_files.save_merged(self.path, self.doc, _keep_verdict)


def _keep_verdict(merged: dict, ours: dict) -> None:
    """The verification owns each item's verdict; everything else is the file's."""
    if FIELD in ours:
        merged[FIELD] = ours[FIELD]


@dataclass
class ItemState:
    """One item with B while it is verified: its model verdicts and its factor label so far."""

    document: Document
    index: int
    item: dict
    by_model: dict[str, dict]
    factor: dict | None

    @property
    def label(self) -> str:
        return f"{self.document.stem}[{self.index}]"

    def store(self, alpha: float) -> None:
        """The item's verdict from what it has (none until a model is judged), saved at once."""
        if self.by_model:
            self.item[FIELD] = item_verdict(self.by_model, alpha, self.factor)
        self.document.save()


@dataclass
class Call:
    """One call to make: the factor label of `state` (case None) or the judge of `case`."""

    state: ItemState
    case: JudgeCase | None = None

    @property
    def label(self) -> str:
        return self.case.label if self.case else f"{self.state.label} factor label"


@dataclass
class Counts:
    not_applicable: int = 0
    kept: int = 0  # records already current (model verdicts and factor labels)
    judged: int = 0  # calls answered (judge and factor label)
    refused: int = 0  # calls the judge model refused (stored as refused records)
    failed: int = 0
    not_finished: int = 0  # left by --max_cost
    unanswered: int = 0  # (item, model) pairs with B whose A or B answer stage 2 has not given yet
    without_answers: int = 0  # items with B and no stage-2 answer at all (no `inferences`)
    failures: list[str] = field(default_factory=list)


def _check_entry(entry: object, where: str) -> None:
    if not isinstance(entry, dict):
        raise utils.DataError(f"{where}: expected an object")
    if "S" in entry and not isinstance(entry["S"], str):
        raise utils.DataError(f"{where}: field 'S' must be a string")
    samples = entry.get("samples")
    if samples is not None and not (
        isinstance(samples, list)
        and samples
        and all(isinstance(s, dict) and isinstance(s.get("S"), str) for s in samples)
    ):
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
            if verdict is not None and not (
                isinstance(verdict, dict) and isinstance(verdict.get("by_model", {}), dict)
            ):
                raise utils.DataError(f"{where}: data[{index}].{FIELD}: expected an object with a 'by_model' object")
        documents.append(Document(path.parent.name, path, doc))
    return documents


def answered(variants: dict, variant: str) -> bool:
    entry = variants.get(variant)
    return isinstance(entry, dict) and isinstance(entry.get("S"), str)


def first_answers(variants: dict, num_samples: int, where: str, short: list[str]) -> dict[str, list[str]]:
    """The first `num_samples` answers under A and under B; an entry with fewer goes to `short`."""
    answers = {}
    for variant in ("A", "B"):
        texts = variant_answers(variants[variant])
        if len(texts) < num_samples:
            short.append(f"{where}[{variant!r}] has {len(texts)} answer(s)")
        answers[variant] = texts[:num_samples]
    return answers


def plan_calls(documents: list[Document], args: argparse.Namespace, counts: Counts) -> list[Call]:
    """Every call to make; sets the verdict of every item that needs none (no B, or only current
    records). Entries with fewer than --num_samples answers stop the run (DataError, one line)."""
    calls, short = [], []
    factor_hashes_now = factor_hashes()
    for document in documents:
        hashes = judge_hashes(document.topic)
        for index, item in enumerate(document.doc["data"]):
            if "B" not in stage_files.item_variants(item):
                item[FIELD] = dict(NOT_APPLICABLE)
                counts.not_applicable += 1
                continue
            verdict = item.get(FIELD) or {}
            factor = verdict.get("factor")
            counts.without_answers += not item.get("inferences")
            by_model = {
                model_id: record if is_refused(record) else recomputed(record, args.alpha)
                for model_id, record in verdict.get("by_model", {}).items()
                if is_judged(record) or is_refused(record)
            }
            state = ItemState(
                document,
                index,
                item,
                by_model,
                factor if not args.force and is_current(factor, args.model, factor_hashes_now) else None,
            )
            if state.factor:
                counts.kept += 1
            else:
                calls.append(Call(state))
            for model_id, variants in item.get("inferences", {}).items():
                if args.stage2_model and model_id not in args.stage2_model:
                    continue
                if not (answered(variants, "A") and answered(variants, "B")):
                    counts.unanswered += 1
                    continue
                where = f"{utils.display_path(document.path)}: data[{index}].inferences[{model_id!r}]"
                case = JudgeCase(
                    document.stem, index, model_id, item, first_answers(variants, args.num_samples, where, short)
                )
                num_samples = {variant: case.count(variant) for variant in ("A", "B")}
                record = state.by_model.get(model_id)
                if not args.force and is_current(record, args.model, hashes, num_samples):
                    counts.kept += 1
                else:
                    state.by_model.pop(model_id, None)  # a stale verdict must not decide the item
                    calls.append(Call(state, case))
            if state.by_model:
                item[FIELD] = item_verdict(state.by_model, args.alpha, state.factor)
            else:
                item.pop(FIELD, None)
    if short:
        more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
        raise utils.DataError(
            f"{short[0]}{more}; --num_samples {args.num_samples} needs {args.num_samples} per "
            f"prompt: run stage 2 with --num_samples {args.num_samples}, or pass a smaller "
            f"--num_samples (at least {MIN_SAMPLES})"
        )
    return calls


def request_of(call: Call, args: argparse.Namespace):
    if call.case is None:
        return factor_request(args.model, call.state.item, call.state.label)
    return judge_request(args.model, call.state.document.topic, call.case)


def store_refusal(call: Call, refusal: str, args: argparse.Namespace, provider: str) -> None:
    """Store the refused call's record on its item: the factor label, or the case's model verdict."""
    state, case = call.state, call.case
    if case is None:
        state.factor = refused_record(refusal, judge_model=args.model, hashes=factor_hashes())
    else:
        state.by_model[case.model_id] = refused_record(
            refusal,
            judge_model=args.model,
            hashes=judge_hashes(state.document.topic),
            provider=provider,
            num_samples={variant: case.count(variant) for variant in ("A", "B")},
        )
    state.store(args.alpha)


async def judge_all(calls: list[Call], args: argparse.Namespace, counts: Counts) -> tuple[bool, list]:
    """Send every call (providers.sending); (stopped by --max_cost, the clients used)."""
    async with client_from_args(args, model=args.model) as client:

        def store_answer(call: Call, response) -> None:
            state, case = call.state, call.case
            if case is None:
                state.factor = factor_record(response.tool_input, judge_model=args.model, hashes=factor_hashes())
            else:
                state.by_model[case.model_id] = model_verdict(
                    response.tool_input["answers"],
                    case.order,
                    judge_model=args.model,
                    provider=client.provider,
                    hashes=judge_hashes(state.document.topic),
                    alpha=args.alpha,
                )
            state.store(args.alpha)

        stopped = await send_each(
            client,
            calls,
            counts,
            desc="verification",
            label=lambda call: call.label,
            request=lambda call: request_of(call, args),
            on_answer=store_answer,
            on_refusal=lambda call, text: store_refusal(call, text, args, client.provider),
            validate=lambda call: answer_problems(len(call.case.order)) if call.case else None,
        )
    return stopped, [client]


def dry_run(calls: list[Call], args: argparse.Namespace) -> None:
    provider = args.provider or provider_for_model(args.model)
    if not calls:
        print("verification dry run: nothing to do")
        return
    print(f"verification dry run: {len(calls)} call(s)")
    requests = []
    for kind, of_kind in (
        ("blind judge", [c for c in calls if c.case]),
        ("factor label", [c for c in calls if not c.case]),
    ):
        if of_kind:
            kind_requests = [request_of(call, args) for call in of_kind]
            requests += kind_requests
            print(
                "\n".join(
                    dry_run_lines(
                        kind,
                        kind_requests,
                        provider,
                        args.base_url,
                        full=args.dry_run == "full",
                        self_hosted=args.self_hosted,
                    )
                )
            )
    total = estimate_cost(requests, provider, base_url=args.base_url, self_hosted=args.self_hosted)
    print(f"all verification calls: estimated {cost_summary(total)}")


def summary_lines(documents: list[Document], counts: Counts, clients: list) -> list[str]:
    items = [item for document in documents for item in document.doc["data"]]
    applicable = [item[FIELD] for item in items if (item.get(FIELD) or {}).get("applicable")]
    judged = [verdict for verdict in applicable if not verdict.get("refused")]
    verified = sum(verdict["verified"] for verdict in judged)
    several = sum((verdict.get("factor") or {}).get("single_factor") is False for verdict in judged)
    lines = [
        f"verification: {counts.judged} call(s) answered, {counts.kept} record(s) kept from earlier runs, "
        f"{counts.failed} failed, {counts.refused} refused by the judge, {counts.not_finished} left for the "
        f"next run",
        f"  items with B judged: {len(judged)}, verified {verified}, not verified {len(judged) - verified}; "
        f"{counts.not_applicable} without B (not applicable, pass through)",
    ]
    if len(applicable) > len(judged):
        lines.append(
            f"  {len(applicable) - len(judged)} item(s) whose every judge call was refused (verified "
            f"null: stage 3's --verified_only skips them)"
        )
    if several:
        lines.append(f"  {several} judged item(s) whose prompts differ in more than the one factor (factor label)")
    if counts.unanswered:
        lines.append(f"  {counts.unanswered} (item, model) pair(s) skipped: stage 2 has not answered both A and B")
    if counts.without_answers:
        lines.append(
            f"  warning: {counts.without_answers} item(s) with B skipped: no stage-2 answers (no `inferences`)"
        )
    if clients:
        lines.append("  " + usage_line(clients))
    return lines


def run(args: argparse.Namespace) -> int:
    if args.num_samples < MIN_SAMPLES:
        raise utils.DataError(
            f"--num_samples {args.num_samples}: at least {MIN_SAMPLES} answers per prompt are "
            "needed for the test to tell an effect from chance (default 10)"
        )
    if not 0 < args.alpha < 1:
        raise utils.DataError(f"--alpha must be above 0 and below 1, got {args.alpha}")
    check_flags(args, args.model)
    utils.setup_logging(args.verbose)
    documents = load_documents(args.names)
    answering = list(
        dict.fromkeys(
            model for document in documents for item in document.doc["data"] for model in item.get("inferences", {})
        )
    )
    unknown = [model for model in args.stage2_model or [] if model not in answering]
    if unknown:
        raise utils.DataError(
            f"--stage2_model {', '.join(unknown)}: no answers in the stage-2 data of "
            f"{', '.join(args.names)}; the models there: {', '.join(answering) or 'none'}"
        )
    counts = Counts()
    calls = plan_calls(documents, args, counts)
    if args.dry_run:
        dry_run(calls, args)
        return EXIT_COMPLETE
    stopped, clients = False, []
    if calls:
        try:
            stopped, clients = asyncio.run(judge_all(calls, args, counts))
        except ProviderError as error:  # a missing key, a model that is gone, an exhausted quota
            raise utils.DataError(str(error)) from None
    for document in documents:  # the not-applicable marks and recomputed verdicts
        document.save()
    for topic in dict.fromkeys(document.topic for document in documents):
        path = feedback.write_topic_feedback(
            topic, [item for document in documents if document.topic == topic for item in document.doc["data"]]
        )
        log.info("wrote %s", utils.display_path(path))
    print("\n".join(summary_lines(documents, counts, clients)))
    return finish(counts, stopped, args.max_cost)
