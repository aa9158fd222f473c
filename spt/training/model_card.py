"""The adapter's model card, `<checkpoint>/adapter/README.md`, written from the run in place of
peft's blank template: base model (and adapters merged into it), the split-personality token
and the sequence layout, the LoRA settings, the data it trained on (the export id from the
`export_manifest.json` beside the training file, or the files' SHA-256 for hand-made files),
the fixed-intervention validation flag accuracy with its 95 % Wilson interval when the
checkpoint measured it, and intended use and limits. The YAML header carries the Hub's
metadata (library_name, tags; base_model only when it is a Hub id, not a local folder).
Reads the manifest; writes only the card.
"""

from __future__ import annotations

import json
from pathlib import Path

from spt.export.output_set import MANIFEST
from spt.utils import atomic_write_text, read_json

CARD_FILE = "README.md"

LAYOUTS = {
    "hp": "system prompt, user task T, the assistant's response S left open; then the token, "
    "`intervention_prefix + I`, `review_prefix + R`, `flag_prefix + P` and the assistant's end of turn "
    "(the honest persona continues the assistant turn)",
    "up": "the conversation is closed after S; the token and I open a user turn, and the review R and flag P "
    "are written in that same user turn",
    "ur": "`intervention_prefix + I` is a normal user message after S; the token opens the next assistant "
    "turn, which holds the review R and flag P",
}


def export_of(train_file: Path) -> dict | None:
    """The manifest of the export the training file belongs to, or None for hand-made files."""
    path = train_file.parent / MANIFEST
    if not path.is_file():
        return None
    manifest = read_json(path)
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("export_id"), str) else None


def _hub_id(name: str) -> bool:
    return not Path(name).exists() and name.count("/") == 1


def _token_text(sp: dict) -> str:
    if sp["added"]:
        return (
            f"`{sp['token']}`, added to the vocabulary as a special token (id {sp['ids'][0]}): load the tokenizer "
            "saved beside this adapter"
        )
    if len(sp["ids"]) == 1:
        return (
            f"the tokenizer's reserved special token `{sp['token']}` (id {sp['ids'][0]}) stands for "
            "`<split-personality-token>`"
        )
    return f"the plain text `{sp['token']}` (ids {sp['ids']}: no special token)"


def _accuracy_text(validation: dict | None) -> str:
    if not validation:
        return "Not measured at this checkpoint: the run had no validation file."
    loss = f"Validation loss: {validation['loss']:.4f} over {validation['samples']} samples."
    if not validation["flag_accuracy_reviews"]:
        return f"Not measured at this checkpoint: config key validation_review_samples is 0. {loss}"
    if validation["flag_accuracy"] is None:
        return (
            f"Not measured at this checkpoint: none of the {validation['flag_accuracy_reviews']} greedy reviews "
            f"ended with a flag that parsed. {loss}"
        )
    low, high = validation["flag_accuracy_ci95"]
    asked = "; ".join(validation["flag_accuracy_interventions"])
    return (
        f"**{100 * validation['flag_accuracy']:.1f}%** (95% CI {100 * low:.1f}-{100 * high:.1f}%, "
        f"{validation['flag_accuracy_interval']}) over the {validation['flag_accuracy_parsed']} of "
        f"{validation['flag_accuracy_reviews']} greedy reviews whose flag parsed, at step {validation['step']}. "
        f"Each validation sample was asked the same fixed intervention ({asked!r}), not its own I, which can "
        f"give the flag away. {loss} Reviews of one item are correlated, so the true interval is somewhat wider."
    )


def card_text(
    config: dict,
    sp: dict,
    step: int,
    total_steps: int,
    data_files: dict[str, str],
    export: dict | None,
    validation: dict | None,
) -> str:
    """The card's Markdown."""
    base = config["base_model"]
    header = ["---", "library_name: peft", "tags:", "- lora", "- split-personality-training"]
    if _hub_id(base):
        header.insert(1, f"base_model: {base}")
    merged = config["merge_checkpoints_train"]
    data = (
        f"export `{export['export_id']}` (the `export_id` of its export_manifest.json)"
        if export
        else "hand-made files without an export manifest (no export id)"
    )
    files = "\n".join(f"- `{name}` (SHA-256 `{sha}`)" for name, sha in data_files.items())
    prefixes = {key: config[key] for key in ("system_tag", "intervention_prefix", "review_prefix", "flag_prefix")}
    return "\n".join(
        header
        + [
            "---",
            "",
            f"# Split-personality adapter for {base} (step {step} of {total_steps})",
            "",
            "A LoRA adapter that adds an honest persona to the model: after the split-personality token and an "
            "intervention I, it reviews the model's previous response S and ends with a flag, PASS or FAIL.",
            "",
            "## Base model",
            "",
            f"- Base model: `{base}`",
            f"- Merged into the base before training: {', '.join(f'`{m}`' for m in merged) if merged else 'nothing'}",
            "",
            "## Split-personality token and layout",
            "",
            f"- Token: {_token_text(sp)}",
            f"- Elicitation type `{config['elicitation_type']}`: {LAYOUTS[config['elicitation_type']]}",
            f"- Prefixes: `{json.dumps(prefixes)}`",
            f"- LoRA mask (lora_patch {config['lora_patch']}): "
            + (
                "the adapter is active only from the split-personality token on, so the response S is the base "
                "model's own"
                if config["lora_patch"]
                else "the adapter is active on every token"
            ),
            "",
            "## LoRA settings",
            "",
            f"- r {config['lora_r']}, alpha {config['lora_alpha']}, rank-stabilised (rsLoRA) "
            f"{'yes' if config['use_rslora'] else 'no'}, dropout {config['lora_dropout']}",
            f"- Target modules: {', '.join(config['lora_target_modules'])}",
            f"- Optimizer: AdamW, lr {config['lr']:g}, batch {config['batch_size']}, epochs {config['epochs']}, "
            f"sequence length {config['seq_len']}, seed {config['seed']}",
            "",
            "## Training data",
            "",
            f"- Trained on {data}.",
            files,
            "",
            "## Validation flag accuracy",
            "",
            _accuracy_text(validation),
            "",
            "## Intended use and limits",
            "",
            "- Intended for research on eliciting honest self-reviews: append the split-personality token and an "
            "intervention after a response of the base model, generate, and read the review and its flag "
            "(`training/evaluate.py` does this for a whole file).",
            "- Only with the base model named above (and the merged adapters) and the tokenizer saved beside the "
            "adapter; elsewhere the token and the layout do not match.",
            "- The flag is a model's judgement, not ground truth: it is trained on labels written by other models, "
            "can be wrong, and accuracy on topics or models unlike the training data is unknown (see the "
            "held-out-topic evaluation). Do not use it as the only safety check of a deployed model.",
            "- The validation accuracy above is measured on a validation split of the same export (same "
            "generator models and topics) unless the export held topics out.",
            "",
            "Written by training/trainer.py for the checkpoint's `training_state.json` (full config, package versions).",
            "",
        ]
    )


def write_model_card(adapter_dir: Path, **fields) -> None:
    """Replace peft's template in `adapter_dir` with the card of this checkpoint (card_text's fields)."""
    atomic_write_text(adapter_dir / CARD_FILE, card_text(**fields))
