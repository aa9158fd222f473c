"""What the prompt-removal default costs (docs/prompt_removal.md): how many selected review samples
need their system prompt (eligibility.verdicts.mark_citing: the regex rule or the LLM judge), per
variant, how many of them mitigation_mode drop_citing set aside, and the FAIL share per data model
among the selected samples and among the exported ones. On the published data the samples that
need their prompt are mostly B and FAIL (the reviews that name the hidden cause), so setting them
aside thins the FAIL class. Reads and writes nothing.
"""

from __future__ import annotations

from typing import Any

from spt import utils
from spt.shared_tools import VARIANTS


def _fail_share(samples: list[dict]) -> dict[str, Any]:
    fails = sum(sample["P"] == "FAIL" for sample in samples)
    return {"samples": len(samples), "FAIL": fails, "share": round(fails / len(samples), 4) if samples else None}


def removal_cost(selected: list[dict], exported: list[dict], set_aside: list[dict]) -> dict[str, Any]:
    """`selected`: the review samples before mitigation (marked); `exported`: the review samples of
    train and validation after it; `set_aside`: those drop_citing took out."""
    by_variant = {
        letter: {
            "selected": sum(s["variant"] == letter for s in selected),
            "need_system_prompt": sum(s["variant"] == letter and s["_needs_system_prompt"] for s in selected),
            "set_aside": sum(s["variant"] == letter for s in set_aside),
        }
        for letter in VARIANTS
    }
    models = sorted({sample["model"] for sample in selected})
    fail_share = {
        model: {
            "selected": _fail_share([s for s in selected if s["model"] == model]),
            "exported": _fail_share([s for s in exported if s["model"] == model]),
        }
        for model in models
    }
    return {"by_variant": by_variant, "fail_share_by_model": fail_share}


def removal_cost_lines(stats: dict[str, Any]) -> list[str]:
    """The report's section on the samples that need their system prompt."""
    cost = stats["system_prompt_needed"]

    def share(cell: dict[str, Any]) -> str:
        return "n/a" if cell["share"] is None else f"{cell['FAIL']} of {cell['samples']} ({100 * cell['share']:.1f}%)"

    lines = [
        "",
        "## Samples that need their system prompt",
        "",
        f"eligibility_source {stats['eligibility_source']}: selected review samples whose I or R needs the system "
        f"prompt never lose it; mitigation_mode {stats['mitigation_mode']} sets them aside when a removal or swap "
        "is on (docs/prompt_removal.md).",
        "",
    ]
    lines += utils.markdown_table(
        ["variant", "selected", "need their system prompt", "set aside"],
        [
            [letter, row["selected"], row["need_system_prompt"], row["set_aside"]]
            for letter, row in cost["by_variant"].items()
        ],
    )
    lines += ["", "FAIL share per data model, review samples:", ""]
    lines += utils.markdown_table(
        ["data model", "selected", "exported"],
        [[model, share(row["selected"]), share(row["exported"])] for model, row in cost["fail_share_by_model"].items()],
    )
    return lines
