"""Stage 1: generate A/B/T samples (system prompts and user tasks) for one or more topics.

Reads:  prompts/base_prompt.md, prompts/stage_1/**, config/stage_1_variation.json,
        data/stage_1/<topic>/batch_*.json (existing tasks; counts for --target_items),
        data/stage_1_failed_batches/<topic>.json (batches to retry),
        data/stage_1_feedback/<topic>.json (scripts/verify_ab_factors.py; recorded in the provenance),
        data/stage_1_planned_batches/<topic>.json (batches a stopped run left unfinished; resumed
        first, with the requests they were planned with, so paid answers come from the cache).
Writes: data/stage_1/<topic>/batch_<topic>_<YYYYmmdd_HHMMSS>_batch_<NNN>.json (docs/data_formats.md §4.1, plus
        a `provenance` block), data/stage_1_failed_batches/<topic>.json,
        data/stage_1_planned_batches/<topic>.json (before the first call), the response cache.
Exit codes: 0 complete, 1 some batches failed or came back short (the next run retries them),
2 bad input or usage (an output folder that cannot be written included), 3 stopped by --max_cost,
130 stopped by Ctrl-C (rerun the same command to resume).

The same program as `spt stage1`; its flags: `--help`; its code: spt/commands/stage_1.py.
"""

import sys

from spt.commands.stage_1 import main

if __name__ == "__main__":
    sys.exit(main())
