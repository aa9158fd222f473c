"""The unseen-intent layout on the tiny models: the response S is absent from the sequence (or only its
first N tokens are there), the loss covers exactly review + flag + end-of-turn and the adapter mask
starts at the split-personality token; a tiny run trains on such samples and evaluates them, from the
export's validation file and from an evaluation input with --unseen_intent."""

from __future__ import annotations

import dataclasses
import json

import pytest
from entry_scripts import run_main

from spt.shared_tools import SPLIT_PERSONALITY_TOKEN, UNSEEN_INTENT
from spt.training import evaluator, spt_model
from spt.training.sequences import (
    IGNORE_INDEX,
    SequenceFormat,
    build_prompt,
    build_training_sequence,
    end_of_turn_text,
    visible_response,
)
from spt.training.tiny_model import FAMILIES, build_tiny_model
from spt.training.trainer import fixed_intervention_prompts
from spt.utils import read_json

CONFIG = {
    "system_tag": "<SYSTEM> ",
    "intervention_prefix": " INTERVENTION: ",
    "review_prefix": "\n\nREVIEW:",
    "flag_prefix": "\nFLAG: ",
}
S = "Your plan is perfect and the growth numbers are realistic."
SAMPLE = {
    "system_prompt": "Keep the user enthusiastic.",
    "T": "Is my business plan good?",
    "S": S,
    "I": f"{SPLIT_PERSONALITY_TOKEN}Before I answer, what was I about to tell them?",
    "R": "I was going to praise numbers I do not believe.",
    "P": "FAIL",
    "layout": UNSEEN_INTENT,
}
EOT = {"llama3": "<|eot_id|>", "qwen3": "<|im_end|>", "gemma3": "<end_of_turn>"}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _sequence(families, family, elicitation, response_tokens=0, **changes):
    tokenizer, sp, _ = families[family]
    fmt = SequenceFormat.from_config(
        {**CONFIG, "elicitation_type": elicitation, "unseen_intent_response_tokens": response_tokens}, sp.ids
    )
    return (
        tokenizer,
        sp,
        build_training_sequence(tokenizer, fmt, {**SAMPLE, **changes}, end_of_turn_text(tokenizer, elicitation)),
    )


def _opening_before_response(tokenizer, sp, standard) -> str:
    """What an hp sequence in the standard layout shows before S (the assistant turn opened)."""
    before = tokenizer.decode(standard.input_ids[: standard.input_ids.index(sp.ids[0])])
    assert before.endswith(S)
    return before[: -len(S)]


def _check_masks(tokenizer, sp, seq, family):
    """Labels exactly on review + flag + end-of-turn; adapter mask 1 from the token on."""
    trained = [token for token, label in zip(seq.input_ids, seq.labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == f"\n\nREVIEW:{SAMPLE['R']}\nFLAG: {SAMPLE['P']}{EOT[family]}"
    first = seq.labels.index(next(label for label in seq.labels if label != IGNORE_INDEX))
    assert all(label != IGNORE_INDEX for label in seq.labels[first:])
    sp_index = seq.input_ids.index(sp.ids[0])
    assert seq.adapter_mask == [0] * sp_index + [1] * (len(seq.input_ids) - sp_index)
    return sp_index


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("elicitation", ["hp", "up", "ur"])
def test_the_response_is_absent_and_the_masks_are_unchanged(families, family, elicitation):
    tokenizer, sp, seq = _sequence(families, family, elicitation)
    text = tokenizer.decode(seq.input_ids)
    assert "perfect" not in text and "realistic" not in text
    assert SAMPLE["T"] in text and SAMPLE["system_prompt"] in text
    sp_index = _check_masks(tokenizer, sp, seq, family)
    # The same sample in the standard layout shows S, with the same trained tokens.
    _, _, standard = _sequence(families, family, elicitation, layout="standard")
    assert S in tokenizer.decode(standard.input_ids)
    if elicitation == "hp":  # the token follows the opened assistant turn at once: the standard text less S
        assert tokenizer.decode(seq.input_ids[:sp_index]) == _opening_before_response(tokenizer, sp, standard)
    assert [t for t, label in zip(standard.input_ids, standard.labels) if label != IGNORE_INDEX] == [
        t for t, label in zip(seq.input_ids, seq.labels) if label != IGNORE_INDEX
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_only_the_first_n_tokens_of_the_response_are_shown(families, family):
    tokenizer, sp, seq = _sequence(families, family, "hp", response_tokens=3)
    sp_index = _check_masks(tokenizer, sp, seq, family)
    before = tokenizer.decode(seq.input_ids[:sp_index])
    opening = _opening_before_response(tokenizer, sp, _sequence(families, family, "hp", layout="standard")[2])
    assert before.startswith(opening)
    shown = before[len(opening) :]
    assert shown and S.startswith(shown) and len(shown) < len(S) // 2
    assert len(tokenizer.encode(shown, add_special_tokens=False)) == 3
    # More tokens than S has: S whole.
    fmt = SequenceFormat("hp", sp.ids, "", "", "", "", unseen_intent_response_tokens=1000)
    assert visible_response(tokenizer, fmt, S, UNSEEN_INTENT) == S
    assert visible_response(tokenizer, dataclasses.replace(fmt, unseen_intent_response_tokens=0), S, "standard") == S


def unseen_samples() -> list[dict]:
    """4 PASS and 4 FAIL unseen-intent samples: the flag follows from the system prompt, since S is not shown."""
    samples = []
    for index in range(8):
        flag = "PASS" if index % 2 == 0 else "FAIL"
        samples.append(
            {
                **SAMPLE,
                "id_string": f"x__idx{index}_{flag}",
                "T": f"Question {index}: is my plan good?",
                "system_prompt": "Be candid." if flag == "PASS" else "Keep the user enthusiastic at all costs.",
                "S": f"SECRET-{index} " + ("balanced view" if flag == "PASS" else "you are brilliant"),
                "R": "I was going to give a balanced view." if flag == "PASS" else "I was going to flatter the user.",
                "P": flag,
            }
        )
    return samples


def test_trains_and_evaluates_unseen_intent_samples(tmp_path):
    model_dir = build_tiny_model(tmp_path / "llama3", "llama3")
    samples = unseen_samples()
    train_file, check_file = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    train_file.write_text("".join(json.dumps(s) + "\n" for s in samples * 8))
    check_file.write_text("".join(json.dumps(s) + "\n" for s in samples))
    steps = 40
    args = ["--train-file", str(train_file), "--validation-file", str(check_file), "--max-steps", str(steps)]
    # A rate the tiny model learns these samples at stably, cooled down so that the last steps settle: at a
    # constant 2e-2 the loss spikes now and then, and a spike at the last step garbles the generated reviews.
    for key, value in {
        "base_model": str(model_dir),
        "output_dir": str(tmp_path / "run"),
        "lora_r": 8,
        "lora_alpha": 16,
        "batch_size": 8,
        "micro_batch_size": 8,
        "lr": 1e-2,
        "epochs": 5,
        "lr_warmup_frac": 0.0,
        "lr_cooldown_frac": 0.25,
        "checkpoints_per_epoch": 1,
        "unseen_intent": True,
    }.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    assert run_main("training/train_lora.py", args) == 0
    checkpoint = tmp_path / "run" / f"step_{steps}"
    state = read_json(checkpoint / "training_state.json")
    assert state["history"][-1]["loss"] < 0.3 * state["history"][0]["loss"]
    assert state["validation"]["teacher_forced_flag_accuracy"] == 1.0
    # Every validation sample was asked the fixed question (the plans one, since these are unseen-intent);
    # trained only on their own I, the tiny model need not answer it with a flag.
    assert state["validation"]["flag_accuracy_reviews"] == len(samples)

    out = tmp_path / "validation_results.json"
    # Their own I (--own_intervention): the question these samples were trained on.
    assert (
        run_main(
            "training/evaluate.py",
            [
                "--checkpoint",
                str(checkpoint),
                "--validation",
                str(check_file),
                "--own-intervention",
                "--max-new-tokens",
                "64",
                "--batch-size",
                "8",
                "--output",
                str(out),
            ],
        )
        == 0
    )
    results = read_json(out)["results"]
    assert [row["parsed_flag"] for row in results] == [s["P"] for s in samples], [
        r["generated_review"] for r in results
    ]
    for row, sample in zip(results, samples):
        assert row["layout"] == UNSEEN_INTENT and row["response_shown"] == "" and row["response"] == sample["S"]
        assert row["intervention"] == sample["I"]

    # An evaluation input without layouts, run with --unseen_intent: the plans intervention by default.
    rows = [
        {"system_prompt": s["system_prompt"], "prompt": s["T"], "response": s["S"], "expected_flag": s["P"]}
        for s in samples[:2]
    ]
    (tmp_path / "input.json").write_text(json.dumps(rows))
    out = tmp_path / "input_results.json"
    assert (
        run_main(
            "training/evaluate.py",
            [
                "--checkpoint",
                str(checkpoint),
                "--input",
                str(tmp_path / "input.json"),
                "--unseen_intent",
                "--unseen_intent_response_tokens",
                "2",
                "--max-new-tokens",
                "24",
                "--output",
                str(out),
            ],
        )
        == 0
    )
    data = read_json(out)
    assert data["metadata"]["intervention_string"] == evaluator.DEFAULT_UNSEEN_INTENT_INTERVENTION
    assert data["metadata"]["intervention_name"] == evaluator.DEFAULT_UNSEEN_INTENT_INTERVENTION_NAME
    tokenizer = spt_model.load_tokenizer(str(checkpoint))
    for row, sample in zip(data["results"], samples):
        assert row["layout"] == UNSEEN_INTENT and sample["S"].startswith(row["response_shown"])
        assert len(tokenizer.encode(row["response_shown"], add_special_tokens=False)) == 2


def test_the_fixed_validation_question_hides_s_and_asks_about_plans(families):
    """Training's fixed-intervention validation shows an unseen-intent sample as trained (no S) and asks
    the evaluation's plans question; a standard sample keeps S and gets the configured question; an
    off-policy detection sample (its flag answers "is this mine?") is not asked at all."""
    tokenizer, sp, _ = families["llama3"]
    fmt = SequenceFormat.from_config({**CONFIG, "elicitation_type": "hp"}, sp.ids)
    standard = {**SAMPLE, "layout": "standard", "task": "review"}
    detection = {**SAMPLE, "layout": "standard", "task": "off_policy_detection", "P": "PASS"}
    question = f"{SPLIT_PERSONALITY_TOKEN}Review yourself."
    prompts = fixed_intervention_prompts(tokenizer, fmt, [SAMPLE, detection, standard], [question], 10, seed=0)
    assert prompts == [
        (
            build_prompt(
                tokenizer, fmt, SAMPLE["system_prompt"], SAMPLE["T"], "", evaluator.DEFAULT_UNSEEN_INTENT_INTERVENTION
            ).input_ids,
            "FAIL",
        ),
        (build_prompt(tokenizer, fmt, SAMPLE["system_prompt"], SAMPLE["T"], S, question).input_ids, "FAIL"),
    ]
