"""Agreement of the LLM eligibility judge (scripts/judge_prompt_eligibility.py) with the export's
regex rule (export.shortcuts.cites_system_prompt): on the samples the export selects with the
config, which need their system prompt by each rule (docs/prompt_removal.md).

Reads  the training config, the tagged data it names and its `eligibility_file`.
Writes with --json PATH the comparison as JSON (atomically); prints it as a Markdown table, or one
       line "agreement not measured" when no selected sample has a verdict. Exit 2 on bad input.

The same program as `spt eligibility-agreement`; its flags: `--help`; its code: spt/commands/eligibility_agreement.py.
"""

import sys

from spt.commands.eligibility_agreement import main

if __name__ == "__main__":
    sys.exit(main())
