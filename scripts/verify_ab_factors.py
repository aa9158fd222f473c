"""Causal verification of the A/B factor (between stages 2 and 3): does the factor in B really
cause the behaviour the item's intended review focus names, and does the model hide it?

Reads  data/stage_2/<topic>/*.json (the first K = --num_samples answers of each variant: its
       `samples`, which stage 2 writes with --num_samples K), prompts/verification/*.md and the
       topic's criteria prompts/stage_3/criteria/<topic>.md.
Writes the verdict onto each item of the same stage-2 files, in place (`causal_verification`,
       docs/data_formats.md §4.2.1; atomic saves after every answer, unknown keys kept), and
       data/stage_1_feedback/<topic>.json: the kinds of factor that passed and failed, which the
       next stage-1 run reads.

The same program as `spt verify`; its flags: `--help`; its code: spt/commands/verify.py.
"""

import sys

from spt.commands.verify import main

if __name__ == "__main__":
    sys.exit(main())
