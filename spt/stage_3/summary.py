"""The per-run summary of stage 3: what was written, how the quality review went, what it cost.

`RunSummary.add(variant, record, verdicts)` counts one finished intervention; `render(clients)`
gives the lines printed at the end of a run: items written and left pending, the ERROR records
and how many of them are samples a model refused, P counts for the A and B variants, the quality-review pass rate at each attempt, the items --verified_only
skipped, tokens, the share of prompt tokens read from the provider's prompt cache, and cost.
Reads and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from spt.providers.summary import usage_line
from spt.shared_tools import ERROR_FLAG, FLAGS, REFUSED_ERROR_KIND, VARIANTS


@dataclass
class RunSummary:
    already_done: int = 0
    not_finished: int = 0  # left pending (stopped by --max_cost or by an earlier failure)
    unverified_skipped: int = 0  # items left out by --verified_only (verification failed or refused)
    without_answers: int = 0  # items with no stage-2 answer at all (no `inferences`)
    answers_without_s: int = 0  # variants stage 2 failed (an entry without `S`)
    flags: Counter = field(default_factory=Counter)  # (variant, P) -> count
    reviewed_at: Counter = field(default_factory=Counter)  # attempt -> items reviewed at that attempt
    accepted_at: Counter = field(default_factory=Counter)  # attempt -> items accepted at that attempt
    overlong: int = 0
    refused: int = 0  # ERROR records of samples a model refused (error_kind "refused")

    def add(self, variant: str, record: dict, verdicts: list[str]) -> None:
        self.flags[variant, record["P"]] += 1
        self.refused += record.get("error_kind") == REFUSED_ERROR_KIND
        self.overlong += bool(record.get("stage_3_reviews_all_failed_due_to_overlong_context"))
        for attempt, verdict in enumerate(verdicts, start=1):
            self.reviewed_at[attempt] += 1
            self.accepted_at[attempt] += verdict == "accept"

    @property
    def written(self) -> int:
        return sum(self.flags.values())

    @property
    def errors(self) -> int:
        return sum(count for (_, flag), count in self.flags.items() if flag == ERROR_FLAG)

    @property
    def failures(self) -> int:
        """ERROR records that are not refusals (a refusal is an outcome, not a failure of the run)."""
        return self.errors - self.refused

    def render(self, clients: list) -> str:
        lines = [
            f"stage 3: {self.written} intervention(s) written ({self.errors} ERROR, of them {self.refused} "
            f"refused by the model and {self.overlong} over the context limit), {self.already_done} already "
            f"done, {self.not_finished} left for the next run"
        ]
        for variant in VARIANTS:
            counts = ", ".join(f"{flag} {self.flags[variant, flag]}" for flag in (*FLAGS, ERROR_FLAG))
            lines.append(f"  {variant}: {counts}")
        if self.reviewed_at:
            rates = ", ".join(
                f"attempt {attempt}: {self.accepted_at[attempt]}/{self.reviewed_at[attempt]} "
                f"({100 * self.accepted_at[attempt] / self.reviewed_at[attempt]:.0f}%)"
                for attempt in sorted(self.reviewed_at)
            )
            lines.append(f"  quality review accepted at {rates}")
        if self.unverified_skipped:
            lines.append(unverified_line(self.unverified_skipped))
        if self.without_answers or self.answers_without_s:
            lines.append(
                f"  warning: skipped {self.without_answers} item(s) without stage-2 answers (no `inferences`) "
                f"and {self.answers_without_s} variant(s) whose stage-2 answer has no `S` (failed in stage 2: "
                "rerun stage 2)"
            )
        lines.append("  " + usage_line(clients))
        return "\n".join(lines)


def unverified_line(count: int) -> str:
    return (
        f"  {count} item(s) skipped as unverified by the causal verification "
        "(kept in the file; --no-verified_only takes them)"
    )
