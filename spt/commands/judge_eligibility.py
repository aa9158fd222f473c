"""Prompt-removal eligibility judged by an LLM: may each review sample of the export lose its
system prompt? Issue 18 item 4 says the published work decided this with an LLM, not a regex
(docs/prompt_removal.md); the export's default is a regex (config `eligibility_source`).

What it reads and writes: the docstring of scripts/judge_prompt_eligibility.py.

One judge call per sample: the system prompt the response was written under, T, S, I, R and P;
the judge answers whether I or R names the system prompt and whether the verdict is reachable
from T and S alone; eligible = not named and reachable (prompts/eligibility/judge.md). A rerun
keeps verdicts made by the same judge model and prompt files for the same texts (--force judges
again; paid answers come from the response cache). Exit codes: 0 complete, 1 some judge calls
failed (the next run retries them), 2 bad input, 3 stopped by --max_cost, 130 stopped by Ctrl-C
(rerun the same command to resume). A second run on the same verdict file stops at once (exit 2)
naming the first (spt/locks.py).

    python scripts/judge_prompt_eligibility.py --dry_run
    python scripts/judge_prompt_eligibility.py --model claude-sonnet-5-5 --batch_api --max_cost 20
    python scripts/eligibility_agreement.py          # agreement with the regex rule
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spt import locks, utils
from spt.eligibility.run import run
from spt.providers import add_provider_arguments, check_output_folders
from spt.training_config import DEFAULT_CONFIG_PATH, load_training_config_with_flags

DEFAULT_MODEL = "claude-sonnet-5-5"


def build_parser() -> utils.ArgumentParser:
    parser = utils.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help="training config whose selection is judged (default: config/training_config.json)",
    )
    parser.add_argument("--data_dir", help="tagged data directory (overrides config data_dir)")
    parser.add_argument("--data_models", nargs="+", help="stage-2 model ids (overrides config data_models)")
    parser.add_argument("--output", help="verdict file (overrides config eligibility_file)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"judge model (default {DEFAULT_MODEL})")
    parser.add_argument("--force", action="store_true", help="judge again samples that already have a current verdict")
    parser.add_argument("--verbose", action="store_true")
    add_provider_arguments(parser, thinking=True, dry_run="a summary of the judge calls and their estimated cost")
    return parser


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_training_config_with_flags(
        args.config,
        {
            "data_dir": ("--data_dir", args.data_dir),
            "data_models": ("--data_models", args.data_models),
            "eligibility_file": ("--output", args.output),
        },
    )
    verdict_file = utils.data_path(config["eligibility_file"])
    check_output_folders(args, verdict_file.parent, "the eligibility verdict file's folder")
    if args.dry_run:
        return run(args, config)
    with locks.hold(verdict_file, "the eligibility verdicts", locks.WAIT_OR_RERUN):
        return run(args, config)


if __name__ == "__main__":
    sys.exit(main())
