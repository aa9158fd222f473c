"""The run that scripts/judge_prompt_eligibility.py starts: `run(args, config)`.

Selects the review samples the export would select with `config` (export.selection: data models,
topics, intervention types, tag filters), and judges every one that has no verdict by the same
judge model and prompt files for its present texts (all of them with --force): one call per
sample through the provider layer (response cache, --max_cost, --batch_api, progress bar with
tokens and cost). Verdicts go into the verdict file (eligibility.verdicts), saved atomically
every SAVE_EVERY answers and at the end, so an interrupted run keeps what it got and a rerun
asks only for the rest (already paid answers come from the response cache). --dry_run prints the
calls and their estimated cost and writes nothing. Returns the exit code: 0 complete, 1 some
judge calls failed (the next run retries them), 3 stopped by --max_cost (2, bad input, is a
DataError).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spt import utils
from spt.eligibility.requests import judge_request, prompt_hashes, sample_sha256
from spt.eligibility.verdicts import load_verdicts, refused_record, save_verdicts, verdict_record
from spt.export.selection import collect_samples
from spt.providers import ProviderError, check_flags, client_from_args, provider_for_model
from spt.providers.dry_run import dry_run_lines
from spt.providers.sending import EXIT_COMPLETE, finish, send_each
from spt.providers.summary import usage_line
from spt.tagging.tags import stage_3_files
from spt.utils import display_path

SAVE_EVERY = 25


@dataclass
class Counts:
    kept: int = 0  # verdicts already current
    judged: int = 0
    refused: int = 0  # judge calls the judge model refused (stored as not eligible, marked refused)
    failed: int = 0
    not_finished: int = 0  # left by --max_cost
    failures: list[str] = field(default_factory=list)


def is_current(record: dict | None, sample: dict, judge_model: str, hashes: dict[str, str]) -> bool:
    return (
        record is not None
        and record.get("judge_model") == judge_model
        and record.get("prompt_sha256") == hashes
        and record["sample_sha256"] == sample_sha256(sample)
    )


async def judge_all(
    samples: list[dict],
    verdicts: dict[str, dict],
    path: Path,
    args: argparse.Namespace,
    hashes: dict[str, str],
    counts: Counts,
) -> tuple[bool, list]:
    """Send every judge call (providers.sending), storing each verdict; (stopped by --max_cost, the clients used)."""
    async with client_from_args(args, model=args.model) as client:

        def store(sample: dict, record: dict) -> None:
            verdicts[sample["id_string"]] = record
            if (counts.judged + counts.refused + 1) % SAVE_EVERY == 0:
                save_verdicts(path, verdicts)

        try:
            stopped = await send_each(
                client,
                samples,
                counts,
                desc="eligibility",
                label=lambda sample: sample["id_string"],
                request=lambda sample: judge_request(args.model, sample),
                on_answer=lambda sample, response: store(
                    sample,
                    verdict_record(
                        response.tool_input, sample, judge_model=args.model, provider=client.provider, hashes=hashes
                    ),
                ),
                on_refusal=lambda sample, text: store(
                    sample,
                    refused_record(text, sample, judge_model=args.model, provider=client.provider, hashes=hashes),
                ),
            )
        finally:
            save_verdicts(path, verdicts)
    return stopped, [client]


def summary_lines(
    samples: list[dict], verdicts: dict[str, dict], path: Path, counts: Counts, clients: list
) -> list[str]:
    judged = [verdicts[s["id_string"]] for s in samples if s["id_string"] in verdicts]
    by_variant = Counter(
        (s["variant"], verdicts[s["id_string"]]["eligible"]) for s in samples if s["id_string"] in verdicts
    )
    lines = [
        f"eligibility: {counts.judged} judge call(s) answered, {counts.kept} verdict(s) kept from earlier runs, "
        f"{counts.failed} failed, {counts.refused} refused by the judge, {counts.not_finished} left for the next "
        f"run -> {display_path(path)}",
        f"  {len(judged)} of {len(samples)} selected samples have a verdict: "
        f"{sum(r['eligible'] for r in judged)} may lose their system prompt, "
        f"{sum(not r['eligible'] for r in judged)} need it "
        f"(A {by_variant[('A', False)]} of {by_variant[('A', False)] + by_variant[('A', True)]}, "
        f"B {by_variant[('B', False)]} of {by_variant[('B', False)] + by_variant[('B', True)]})",
    ]
    if clients:
        lines.append("  " + usage_line(clients))
    return lines


def run(args: argparse.Namespace, config: dict[str, Any]) -> int:
    check_flags(args, args.model)
    utils.setup_logging(args.verbose)
    data_dir = utils.data_path(config["data_dir"])
    path = utils.data_path(config["eligibility_file"])
    selection, heldout, _ = collect_samples(stage_3_files(data_dir), data_dir, config)
    samples = selection.samples + heldout  # the export marks the held-out topics' samples too
    verdicts = load_verdicts(path, missing_ok=True)
    hashes = prompt_hashes()
    counts = Counts()
    todo = []
    for sample in samples:
        if not args.force and is_current(verdicts.get(sample["id_string"]), sample, args.model, hashes):
            counts.kept += 1
        else:
            todo.append(sample)
    if args.dry_run:
        if not todo:
            print(f"eligibility dry run: nothing to do ({counts.kept} verdict(s) current)")
            return EXIT_COMPLETE
        provider = args.provider or provider_for_model(args.model)
        print(f"eligibility dry run: {len(todo)} judge call(s), {counts.kept} verdict(s) current")
        print(
            "\n".join(
                dry_run_lines(
                    "prompt-removal eligibility",
                    [judge_request(args.model, s) for s in todo],
                    provider,
                    args.base_url,
                    full=args.dry_run == "full",
                    self_hosted=args.self_hosted,
                )
            )
        )
        return EXIT_COMPLETE
    stopped, clients = False, []
    if todo:
        try:
            stopped, clients = asyncio.run(judge_all(todo, verdicts, path, args, hashes, counts))
        except ProviderError as error:  # a missing key, a model that is gone, an exhausted quota
            raise utils.DataError(str(error)) from None
    print("\n".join(summary_lines(samples, verdicts, path, counts, clients)))
    return finish(counts, stopped, args.max_cost)
