"""Tables of evaluation accuracy from `data/evaluation_results/quantitative/*.json` (docs/data_formats.md §4.5).

Reads every `*.json` in `--dir` (default data/evaluation_results/quantitative) and classifies
each file: a baseline has `baseline_type`; an SPT run is on-policy when every policy-labelled
review row is `on`, off-policy when none is, mixed-policy otherwise; only files whose rows carry
no policy label (the published ones) fall back to the name rule (`on-policy` in the checkpoint
name), and the summary says which rule gave each kind.
Accuracy = share of rows with `parsed_flag == expected_flag` among the rows whose flag parsed;
the parse rate, n and a 95% Wilson interval are reported beside it. Incomplete files (`processing_complete` false or
fewer rows than `total_samples`) are skipped with a warning; files with identical `results`
are one run, counted once, with a note. Extra fields (e.g. a per-row `correct`, a `summary`
block) are ignored.

The same program as `spt eval-report`; its flags: `--help`; its code: spt/commands/eval_report.py.
"""

import sys

from spt.commands.eval_report import main

if __name__ == "__main__":
    sys.exit(main())
