"""Agreement of the LLM eligibility judge (scripts/judge_prompt_eligibility.py) with the export's
regex rule (export.shortcuts.cites_system_prompt): on the samples the export selects with the
config, which need their system prompt by each rule (docs/prompt_removal.md).

What it reads and writes: the docstring of scripts/eligibility_agreement.py.

    python scripts/eligibility_agreement.py --data_dir ../shared/reference-data/stage_3_tagged_more
"""

from __future__ import annotations

import sys
from pathlib import Path

from spt import utils
from spt.eligibility.agreement import agreement, agreement_lines
from spt.eligibility.verdicts import load_verdicts
from spt.export.selection import collect_samples
from spt.tagging.tags import stage_3_files
from spt.training_config import DEFAULT_CONFIG_PATH, load_training_config_with_flags


def parse_args(argv: list[str] | None):
    parser = utils.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help="training config (default: config/training_config.json)",
    )
    parser.add_argument("--data_dir", help="tagged data directory (overrides config data_dir)")
    parser.add_argument("--data_models", nargs="+", help="stage-2 model ids (overrides config data_models)")
    parser.add_argument("--verdicts", help="verdict file (overrides config eligibility_file)")
    parser.add_argument("--json", type=utils.data_path, help="also write the comparison as JSON here")
    return parser.parse_args(argv)


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_training_config_with_flags(
        args.config,
        {
            "data_dir": ("--data_dir", args.data_dir),
            "data_models": ("--data_models", args.data_models),
            "eligibility_file": ("--verdicts", args.verdicts),
        },
    )
    data_dir = utils.data_path(config["data_dir"])
    selection, heldout, _ = collect_samples(stage_3_files(data_dir), data_dir, config)
    samples = selection.samples + heldout
    result = agreement(samples, load_verdicts(utils.data_path(config["eligibility_file"])))
    if args.json:
        utils.atomic_write_json(args.json, result)
    print("\n".join(agreement_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
