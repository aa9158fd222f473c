"""Stage 3: write an intervention (I), a first-person review (R) and a flag (P) for every answer
of every target model, in the two published intervention families (or those --intervention_types
names; unseen_intent is opt-in), and have each one checked by an external
quality reviewer.

Reads  data/stage_2/<topic>/*.json (or, when it exists, the same file under data/stage_3/, whose
       interventions are kept; answers stage 2 has added since and the stage-2 item's
       `causal_verification` verdict are picked up),
       prompts/base_prompt.md, prompts/stage_3/<topic>__<family>.md (+ prompts/stage_3/_shared/,
       prompts/stage_3/criteria/).
Writes data/stage_3/<topic>/<same name>.json with
       inferences[<model>][A|B].interventions["<family>__<version>"] (docs/data_formats.md §4.3) added, plus the
       prompt files' SHA-256 (`prompt_sha256`); saved atomically after every batch.

The same program as `spt stage3`; its flags: `--help`; its code: spt/commands/stage_3.py.
"""

import sys

from spt.commands.stage_3 import main

if __name__ == "__main__":
    sys.exit(main())
