"""What a stage 1 run prints: the dry run (the plan, a summary of the calls it would make:
count, answer schema, system/user sizes, SHA-256 of each system block, estimated tokens and
cost; with --dry_run_full also the first request's body as sent) and the summary of a run (per topic: batches, samples,
near-duplicates, invalid samples, the A/B and FPT shares, tokens and cost), with the run's exit
code. Reads nothing; writes nothing but standard output and the log.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from spt.providers import provider_for_model
from spt.providers.dry_run import dry_run_lines
from spt.stage_1.generate import Run
from spt.stage_1.plan import BatchCall, TopicPlan, build_request

log = logging.getLogger("spt.stage_1")
MIX_CHECK_MIN_ITEMS = 20  # below this, the A/B and FPT shares of a run say too little to warn about


def print_dry_run(args: argparse.Namespace, plans: list[TopicPlan]) -> None:
    provider = args.provider or provider_for_model(args.model)
    requests = [
        replace(
            build_request(
                args,
                plan,
                BatchCall(b.batch_number, b.variation, b.num_items, b.avoid, feedback=b.feedback.get("section", "")),
            ),
            effort=args.effort,
            thinking_budget=args.thinking_budget,
        )  # as the client sends them
        for plan in plans
        for b in plan.batches
    ]
    for plan in plans:
        print(
            f"{plan.topic}: {plan.existing_items} samples on disk, {len(plan.batches)} batch(es) planned "
            f"({sum(b.num_items for b in plan.batches)} samples)" + resumed_note(plan) + feedback_note(plan)
        )
    if not requests:
        print("nothing to do: every topic already has its target")
        return
    print(f"\ncalls: {len(requests)} (plus any re-asks and duplicate replacements)")
    print(
        "\n".join(
            dry_run_lines(
                "stage-1 generation",
                requests,
                provider,
                args.base_url,
                self_hosted=args.self_hosted,
                full=args.dry_run == "full",
            )
        )
    )


def feedback_note(plan: TopicPlan) -> str:
    """The note naming the causal-verification feedback the topic's batches carry ("" when none)."""
    files = sorted({b.feedback["file"] for b in plan.batches if b.feedback})
    return f"; with the verification feedback of {', '.join(files)}" if files else ""


def resumed_note(plan: TopicPlan) -> str:
    """The note on the batches a stopped run left unfinished ("" when there are none)."""
    return f", {plan.resumed} of them left unfinished by a stopped run (resumed as planned)" if plan.resumed else ""


def print_summary(run: Run) -> None:
    print("\nstage 1 summary")
    print(
        f"{'topic':<26}{'ok':>5}{'failed':>8}{'items':>7}{'dups':>6}{'dup rate':>10}{'invalid':>9}{'with B':>8}"
        f"{'FPT':>6}{'tokens in/out':>18}{'cost $':>10}"
    )
    for topic, s in run.stats.items():
        seen = s.items + s.duplicates
        rate = f"{100 * s.duplicates / seen:.1f}%" if seen else "-"
        with_b, fpt = (f"{100 * n / s.items:.0f}%" if s.items else "-" for n in (s.items_with_b, s.items_fpt))
        tokens_in = s.usage.input_tokens + s.usage.cache_creation_input_tokens + s.usage.cache_read_input_tokens
        print(
            f"{topic:<26}{s.batches_ok:>5}{s.batches_failed:>8}{s.items:>7}{s.duplicates:>6}{rate:>10}{s.invalid:>9}"
            f"{with_b:>8}{fpt:>6}{f'{tokens_in}/{s.usage.output_tokens}':>18}{s.cost_usd:>10.4f}"
        )
        if s.items >= MIX_CHECK_MIN_ITEMS and not 0.3 <= s.items_with_b / s.items <= 0.7:
            log.warning(
                "%s: %d%% of this run's samples have a B prompt (the prompts ask for about half)",
                topic,
                round(100 * s.items_with_b / s.items),
            )
        if s.items >= MIX_CHECK_MIN_ITEMS and s.items_fpt / s.items > 0.2:
            log.warning(
                "%s: %d%% of this run's samples are FPT (the prompts ask for 5-10%%)",
                topic,
                round(100 * s.items_fpt / s.items),
            )
    refused = sum(s.batches_refused for s in run.stats.values())
    if refused:
        print(f"{refused} batch(es) ended by a refusal of the model (counted as failed; the next run asks again)")
    print(run.client.summary())
    if run.cost_limit_reached:
        print(f"stopped: --max_cost {run.args.max_cost} reached; rerun to continue")


def exit_code(run: Run) -> int:
    if run.cost_limit_reached:
        return 3
    return 1 if any(s.batches_failed for s in run.stats.values()) else 0
