"""Issue 19, must show 2: stage 3 when the model refuses every request that holds one stage-2
item's task. Ten items of one target model (A and B), both published families, --batch_size 2,
claude-sonnet-5-5 on the fake provider server (tests/fake_provider/, `refuse`).

Prints the exit code, how many of the other 36 interventions are valid, how many of the refused
item's 4 are recorded as refused (`error_kind: "refused"`), the refused calls and all paid calls,
then the run's summary. Writes only in a temporary directory.
Usage: PYTHONPATH=scripts:training:.:tests .venv/bin/python tests/benchmarks/bench_stage_3_refusals.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench_paths import add_test_code

add_test_code()

from fake_provider import FakeProviderServer  # noqa: E402
from test_stage_3_helpers import (  # noqa: E402
    MODELS,
    accept_reviews,
    run_stage_3,
    stage_2_item,
    stage_3_path,
    variants,
    write_stage_2,
)

REFUSED_ITEM = 3
FLAGS = ("PASS", "FAIL", "AMBIGUOUS")


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="spt_refusals_"))
    path = write_stage_2(data_dir, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1]) for i in range(10)])
    with FakeProviderServer(seed=0) as server:
        server.script(accept_reviews)
        server.refuse(rf"TASK-{REFUSED_ITEM}:")
        result = run_stage_3(
            server,
            data_dir,
            "--names",
            "sycophancy",
            "--batch_size",
            "2",
            "--model",
            "claude-sonnet-5-5",
            "--intervention_modification",
            "v1",
        )
        refused_calls = sum(entry.fault == "refusal" for entry in server.paid)
        paid_calls = len(server.paid)
    records = [
        (index, record)
        for index, _, _, entry in variants(json.loads(stage_3_path(path).read_text()))
        for record in (entry.get("interventions") or {}).values()
    ]
    others = [record for index, record in records if index != REFUSED_ITEM]
    refused = [record for index, record in records if index == REFUSED_ITEM]
    print(
        f"exit {result.returncode}; other interventions valid {sum(r['P'] in FLAGS for r in others)}/36; "
        f"refused item recorded as refused {sum(r.get('error_kind') == 'refused' for r in refused)}/4; "
        f"refused calls {refused_calls}; paid calls {paid_calls}"
    )
    print(result.stdout)


if __name__ == "__main__":
    main()
