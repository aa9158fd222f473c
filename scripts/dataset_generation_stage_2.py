"""Stage 2: the target model answers every stage-1 sample under the neutral (A) and, where the
sample has one, the biased (B) system prompt.

Reads  data/stage_1/<topic>/*.json (or, when it exists, the same file under data/stage_2/, so that
       several target models accumulate in one file)
Writes data/stage_2/<topic>/<same name>.json with `inferences[<model id>][A|B]` added (docs/data_formats.md §4.2):
       S, thinking (when the model thought), input_tokens, output_tokens, string_length,
       generation_time, temperature, top_p, top_k, thinking_enabled, finish_reason, inference,
       samples (with --num_samples > 1). A variant whose generation failed gets `error` and no S.

The same program as `spt stage2`; its flags: `--help`; its code: spt/commands/stage_2.py.
"""

import sys

from spt.commands.stage_2 import main

if __name__ == "__main__":
    sys.exit(main())
