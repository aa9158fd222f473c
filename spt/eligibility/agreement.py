"""How often the LLM judge's eligibility verdicts agree with the export's regex rule, on the samples
that have a verdict for their present texts: the 2 x 2 table (needs its prompt by regex / by the
judge), the share of agreement and Cohen's kappa, overall and per variant. Reads and writes nothing.
"""

from __future__ import annotations

from typing import Any

from spt.eligibility.verdicts import current_verdict, regex_cites

CELLS = ("both_need", "regex_only", "llm_only", "neither")


def _table(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """(regex says the sample needs its prompt, the judge says so) pairs -> counts, agreement, kappa."""
    cells = dict.fromkeys(CELLS, 0)
    for regex, llm in pairs:
        cells[CELLS[2 * (not regex) + (not llm)]] += 1
    n = len(pairs)
    if not n:
        return {"samples": 0, **cells, "agreement": None, "cohen_kappa": None}
    observed = (cells["both_need"] + cells["neither"]) / n
    regex_share = (cells["both_need"] + cells["regex_only"]) / n
    llm_share = (cells["both_need"] + cells["llm_only"]) / n
    expected = regex_share * llm_share + (1 - regex_share) * (1 - llm_share)
    kappa = None if expected == 1 else round((observed - expected) / (1 - expected), 4)
    return {"samples": n, **cells, "agreement": round(observed, 4), "cohen_kappa": kappa}


def agreement(samples: list[dict], verdicts: dict[str, dict]) -> dict[str, Any]:
    """The comparison over `samples` (selected, before mitigation) with their current verdicts."""
    judged = [
        (sample, record)
        for sample in samples
        if (record := current_verdict(verdicts, sample)) is not None and not record.get("refused")
    ]
    pairs = {"all": [(regex_cites(s), not r["eligible"]) for s, r in judged]}
    for letter in ("A", "B"):
        pairs[letter] = [(regex_cites(s), not r["eligible"]) for s, r in judged if s["variant"] == letter]
    return {
        "selected_samples": len(samples),
        "without_verdict": len(samples) - len(judged),
        "by_variant": {name: _table(rows) for name, rows in pairs.items()},
    }


def agreement_lines(result: dict[str, Any]) -> list[str]:
    """The comparison as Markdown, or one line saying it was not measured."""
    if result["by_variant"]["all"]["samples"] == 0:
        return [
            f"agreement not measured: none of the {result['selected_samples']} selected samples has an LLM verdict "
            "for its present texts (run scripts/judge_prompt_eligibility.py)"
        ]
    lines = [
        f"LLM judge vs regex rule, 'needs its system prompt' ({result['without_verdict']} of "
        f"{result['selected_samples']} selected samples without a verdict left out):",
        "",
        "| variant | samples | both need | regex only | LLM only | neither | agreement | Cohen's kappa |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["by_variant"].items():
        agree = "-" if row["agreement"] is None else f"{100 * row['agreement']:.1f}%"
        kappa = "-" if row["cohen_kappa"] is None else f"{row['cohen_kappa']:.3f}"
        lines.append(
            f"| {name} | {row['samples']} | {row['both_need']} | {row['regex_only']} | {row['llm_only']} | "
            f"{row['neither']} | {agree} | {kappa} |"
        )
    return lines
