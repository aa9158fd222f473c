"""The work of a stage-3 run, planned before any call: one WorkUnit per generation call, and the
dry run that shows the first of those calls.

`plan_units(documents, args, summary)` cuts every document into batches of --batch_size items
(numbered the same on every run, so a record names its batch stably; with --verified_only the
items whose causal verification failed, or was refused by the judge, are left out of them,
counted in `summary.unverified_skipped`) and makes one WorkUnit per (batch, target model, family)
that still has pending samples; the interventions already written are counted in
`summary.already_done`. `dry_run(units, args)` prints the number of calls and samples and a
summary of the generation requests (providers.dry_run: answer schema, sizes, SHA-256 of the
system blocks, estimated cost; with --dry_run_full the first body as the provider would receive
it). Reads and writes nothing (dry_run prints to stdout).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

from spt.providers import estimate_cost, provider_for_model
from spt.providers.dry_run import cost_summary, dry_run_lines
from spt.shared_tools import intervention_key
from spt.stage_3.data import Stage3Document, is_pending, pending_samples, target_models_of
from spt.stage_3.requests import Sample, generation_request
from spt.stage_3.summary import RunSummary
from spt.verification.verdict import failed_verification


@dataclass
class WorkUnit:
    """One generation call's worth of work: pending samples of one batch, target model and family."""

    document: Stage3Document
    intervention_type: str
    key: str
    batch_number: int
    batch_count: int
    samples: list[Sample]


def plan_units(documents: list[Stage3Document], args: argparse.Namespace, summary: RunSummary) -> list[WorkUnit]:
    units = []
    for document in documents:
        size = len(document.doc["data"])
        skipped = {
            index for index, item in enumerate(document.doc["data"]) if args.verified_only and failed_verification(item)
        }
        summary.unverified_skipped += len(skipped)
        _count_unanswered(document, args.stage2_model, summary)
        batches = [
            [index for index in range(start, min(start + args.batch_size, size)) if index not in skipped]
            for start in range(0, size, args.batch_size)
        ]
        for model_id in target_models_of(document, args.stage2_model):
            for intervention_type in args.intervention_types:
                key = intervention_key(intervention_type, args.intervention_modification)
                for number, indices in enumerate(batches, start=1):
                    samples = pending_samples(document, indices, model_id, key)
                    summary.already_done += _finished_count(document, indices, model_id, key)
                    if samples:
                        units.append(WorkUnit(document, intervention_type, key, number, len(batches), samples))
    return units


def _count_unanswered(document: Stage3Document, target_models: list[str] | None, summary: RunSummary) -> None:
    """Count the items without any stage-2 answer and the variants stage 2 failed (no `S`)."""
    for item in document.doc["data"]:
        if not item.get("inferences"):
            summary.without_answers += 1
            continue
        for model_id, variants in item["inferences"].items():
            if not target_models or model_id in target_models:
                summary.answers_without_s += sum(not isinstance(entry.get("S"), str) for entry in variants.values())


def _finished_count(document: Stage3Document, indices: list[int], model_id: str, key: str) -> int:
    variants = (document.doc["data"][i].get("inferences", {}).get(model_id, {}) for i in indices)
    return sum(
        not is_pending(entry.get("interventions", {}), key) for entries in variants for entry in entries.values()
    )


def dry_run(units: list[WorkUnit], args: argparse.Namespace) -> None:
    """Print the number of calls and samples and the summary of the generation requests (with
    --dry_run_full, the first one's body as the provider would receive it)."""
    provider = args.provider or provider_for_model(args.model)
    if not units:
        print("stage 3 dry run: nothing to do")
        return
    reviews = len(units) if args.max_review_attempts else 0
    print(
        f"stage 3 dry run: {len(units)} generation call(s) for {sum(len(unit.samples) for unit in units)} "
        f"sample(s); at least {reviews} quality-review call(s) follow (their requests depend on the answers)"
    )
    requests = [
        replace(
            generation_request(args.model, unit.document.topic, unit.intervention_type, unit.samples),
            effort=args.effort,
            thinking_budget=args.thinking_budget,
        )  # as the client sends them
        for unit in units
    ]
    for intervention_type in dict.fromkeys(unit.intervention_type for unit in units):
        of_type = [request for request, unit in zip(requests, units) if unit.intervention_type == intervention_type]
        print(
            "\n".join(
                [
                    "",
                    *dry_run_lines(
                        f"stage-3 generation ({intervention_type})",
                        of_type,
                        provider,
                        args.base_url,
                        full=args.dry_run == "full",
                        self_hosted=args.self_hosted,
                    ),
                ]
            )
        )
    total = estimate_cost(requests, provider, base_url=args.base_url, self_hosted=args.self_hosted)
    print(f"\nall generation calls: estimated {cost_summary(total)} (the quality reviews come on top)")
