"""Prompt-removal eligibility judged by an LLM: may each review sample of the export lose its
system prompt? Issue 18 item 4 says the published work decided this with an LLM, not a regex
(docs/prompt_removal.md); the export's default is a regex (config `eligibility_source`).

Reads  the training config (--config) and the tagged data it names (data_dir), selecting the
       review samples exactly as the export does; prompts/eligibility/judge.md, judge_request.md.
Writes the verdicts to the config's `eligibility_file` (default data/prompt_eligibility.json,
       docs/data_formats.md §6), atomically as it goes; set `eligibility_source` to "llm" and the
       export reads them (every selected sample must have a verdict for its present texts).

The same program as `spt judge-eligibility`; its flags: `--help`; its code: spt/commands/judge_eligibility.py.
"""

import sys

from spt.commands.judge_eligibility import main

if __name__ == "__main__":
    sys.exit(main())
