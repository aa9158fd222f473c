"""The `spt` command: one subcommand per pipeline step, each the program of an entry script in
scripts/ or training/ with the same flags (`spt stage1 --help`). A subcommand imports only its own
step, so the API stages run without torch installed.

    spt stage1 --names sycophancy --target_items 4 --provider mock --model mock-generator
    spt export --config config/training_config.json
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module with `main(argv)`, entry script, what it does), in pipeline order
SUBCOMMANDS = {
    "stage1": ("spt.commands.stage_1", "scripts/dataset_generation_stage_1.py", "generate the A/B tasks"),
    "stage2": ("spt.commands.stage_2", "scripts/dataset_generation_stage_2.py", "answer them with the target models"),
    "verify": (
        "spt.commands.verify",
        "scripts/verify_ab_factors.py",
        "check that the A/B factor changes the answers (causal verification)",
    ),
    "stage3": (
        "spt.commands.stage_3",
        "scripts/dataset_generation_stage_3.py",
        "write interventions, reviews and flags",
    ),
    "tag": ("spt.commands.tag", "scripts/tag_stage_3_data.py", "tag the stage-3 data"),
    "analyze": ("spt.commands.analyze", "scripts/analyze_stage_3.py", "the analysis report of the tagged data"),
    "judge-eligibility": (
        "spt.commands.judge_eligibility",
        "scripts/judge_prompt_eligibility.py",
        "judge which samples may lose their system prompt",
    ),
    "eligibility-agreement": (
        "spt.commands.eligibility_agreement",
        "scripts/eligibility_agreement.py",
        "the judge's agreement with the tags",
    ),
    "export": ("spt.commands.export", "scripts/export_training_data.py", "the training files"),
    "view": ("spt.commands.view", "scripts/view_samples.py", "the sample viewer (HTML) of stage-3 data or an export"),
    "tiny-model": ("spt.training.tiny_model", "training/tiny_model.py", "build a tiny random-weight chat model"),
    "train": ("spt.commands.train", "training/train_lora.py", "train the LoRA honest persona"),
    "evaluate": ("spt.commands.evaluate", "training/evaluate.py", "evaluate a checkpoint"),
    "eval-report": (
        "spt.commands.eval_report",
        "scripts/analyze_evaluation_results.py",
        "the report over evaluation results",
    ),
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what} ({script})" for name, (_, script, what) in SUBCOMMANDS.items())
    return f"usage: spt <subcommand> [flags]   (spt <subcommand> --help lists its flags)\n\nsubcommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"spt: unknown subcommand {name!r}\n\n{usage()}", end="", file=sys.stderr)
        return 2
    sys.argv[0] = f"spt {name}"  # argparse names the program after it
    return importlib.import_module(SUBCOMMANDS[name][0]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
