"""The work of a stage-3 run, planned before any call: one WorkUnit per generation call, and the
dry run that shows the first of those calls.

`plan_units(documents, args, summary)` cuts every document into batches of --batch_size items
(numbered the same on every run, so a record names its batch stably) and makes one WorkUnit per
(batch, target model, family) that still has pending samples; the interventions already written
are counted in `summary.already_done`. `dry_run(units, args)` prints the first generation
request as the provider would receive it, the number of calls and samples, and the estimated
cost. Reads and writes nothing (dry_run prints to stdout).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace

from providers import estimate_cost, provider_for_model, render_wire_request
from shared_tools import intervention_key
from stage_3.data import Stage3Document, is_pending, pending_samples, target_models_of
from stage_3.requests import Sample, generation_request
from stage_3.summary import RunSummary


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
        batches = [range(start, min(start + args.batch_size, size)) for start in range(0, size, args.batch_size)]
        for model_id in target_models_of(document, args.stage2_model):
            for intervention_type in args.intervention_types:
                key = intervention_key(intervention_type, args.intervention_modification)
                for number, indices in enumerate(batches, start=1):
                    samples = pending_samples(document, indices, model_id, key)
                    summary.already_done += _finished_count(document, indices, model_id, key)
                    if samples:
                        units.append(WorkUnit(document, intervention_type, key, number, len(batches), samples))
    return units


def _finished_count(document: Stage3Document, indices: range, model_id: str, key: str) -> int:
    variants = (document.doc["data"][i].get("inferences", {}).get(model_id, {}) for i in indices)
    return sum(not is_pending(entry.get("interventions", {}), key)
               for entries in variants for entry in entries.values())


def dry_run(units: list[WorkUnit], args: argparse.Namespace) -> None:
    """Print the first generation request as the provider would receive it, and the cost estimate."""
    provider = args.provider or provider_for_model(args.model)
    requests = [generation_request(args.model, unit.document.topic, unit.intervention_type, unit.samples)
                for unit in units]
    samples = sum(len(unit.samples) for unit in units)
    print(json.dumps({
        "first_request": render_wire_request(replace(requests[0], effort=args.effort,
                                                     thinking_budget=args.thinking_budget), provider, args.base_url)
        if requests else None,
        "generation_calls": len(requests),
        "samples": samples,
        "quality_review_calls_at_least": len(requests) if args.max_review_attempts else 0,
        "estimate_of_generation_calls": estimate_cost(requests, provider, base_url=args.base_url),
    }, indent=2, ensure_ascii=False))
