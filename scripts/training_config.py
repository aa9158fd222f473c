"""Strict loading of config/training_config.json, shared by the export, the analysis and
training/.

Every key has a declared type; an unknown or misspelt key, a missing key or a value of the
wrong type or range raises DataError with one line naming the file and the key (with a
"did you mean" suggestion). Reads the config file; writes nothing.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from shared_tools import INTERVENTION_TYPES, TOPICS, UNSEEN_INTENT
from tagging.tags import TAG_ORDER
from utils import CONFIG_DIR, DataError, display_path, read_json

DEFAULT_CONFIG_PATH = CONFIG_DIR / "training_config.json"

_STR_LIST = "list[str]"
_STR_OR_STR_LIST = "str | list[str]"
# key -> (type, description)
SCHEMA: dict[str, tuple[Any, str]] = {
    "intervention_types": (_STR_LIST, "intervention keys to train on, e.g. split_personality__version_4"),
    "train_topics": (_STR_LIST, "topics whose items may go to the training split"),
    "validation_topics": (_STR_LIST, "topics whose items may go to the validation split"),
    "validation_fraction": (float, "share of items (of topics in both lists) held out for validation"),
    "data_models": (_STR_LIST, "stage-2 model ids whose responses are used"),
    "trained_model_data_id": (str, "the stage-2 model id of the trained model's own answers (\"\" = base_model, "
                                   "compared case-insensitively); only its answers shown with their own system "
                                   "prompt are on-policy"),
    "leave_topics_out_folds": (int, "0: off; k >= 2: also export k leave-topics-out sets into <export_dir>/fold_<i>/, "
                                    "fold i holding out a seeded i-th share of the train topics the data has "
                                    "(its heldout_topics.jsonl)"),
    "data_dir": (str, "tagged stage-3 data directory"),
    "export_dir": (str, "where the train/validation JSONL files are written"),
    "tags_to_filter": (_STR_LIST, "a sample carrying any of these tags is dropped"),
    "remove_system_prompt_fraction": (float, "shortcut mitigation: share of eligible samples trained without system prompt "
                                               "(default config 1.0: 100% removal, which issue 18 item 4 says the published "
                                               "documentation recommends for consistency, at a cost: "
                                               "docs/prompt_removal.md; 0.0 = the published exporter's samples)"),
    "swap_a_b_fraction": (float, "shortcut mitigation: share of eligible samples shown the other variant's system prompt"),
    "mitigation_mode": (str, "citing samples (I or R cites the system prompt) under removal/swap: 'drop_citing' moves "
                               "them to cites_system_prompt.jsonl, not trained on; 'exempt' keeps them with their "
                               "prompt, so a visible prompt predicts FAIL (a new shortcut)"),
    "eligibility_source": (str, "who decides that a sample needs its system prompt (never removed or swapped): "
                                "'regex' (I or R names or quotes it) or 'llm' (the verdicts of "
                                "scripts/judge_prompt_eligibility.py in eligibility_file; issue 18 item 4: the "
                                "published work used an LLM)"),
    "eligibility_file": (str, "the LLM judge's verdict file, read with eligibility_source 'llm'"),
    "off_policy_detection_fraction": (float, "share of the trained model's (item, variant) answers that get an "
                                             "on-policy detection sample (its own answer under its own prompt) and an "
                                             "off-policy one (another model's answer, or its own answer under the "
                                             "other variant's prompt); 0 = none"),
    "shortcut_warning_margin": (float, "warn when a classifier on one view (system prompt, T, I, S, style of S) "
                                       "predicts the flag on validation this much above the majority share and "
                                       "its item-bootstrap interval's lower end is above it"),
    "unseen_intent": (bool, "true: interventions of the unseen_intent family named in intervention_types are exported "
                            "as unseen-intent samples (layout unseen_intent: the model never sees S and reviews its "
                            "plan); false: naming such a key is an error"),
    "unseen_intent_response_tokens": (int, "unseen-intent samples: the model sees this many first tokens of S "
                                           "(0 = none) in training and evaluation"),
    "seed": (int, "seed for the split and the shortcut mitigations"),
    "system_tag": (str, "wraps the system prompt"),
    "intervention_prefix": (str, "text between the split-personality token and I"),
    "review_prefix": (str, "text before R"),
    "flag_prefix": (str, "text before P"),
    "elicitation_type": (str, "hp, up or ur"),
    "add_sp_token": (int, "1: use a real special token for <split-personality-token>"),
    "lora_patch": (int, "1: LoRA-mask, the adapter is inactive before the split-personality token"),
    "base_model": (str, "Hugging Face id or local directory of the model to train"),
    "merge_checkpoints_train": (_STR_LIST, "LoRA adapters merged into the base before training"),
    "output_dir": (str, "checkpoint directory"),
    "seq_len": (int, "maximum tokens per sample"),
    "batch_size": (int, "samples per optimizer step"),
    "micro_batch_size": (int, "samples per forward pass (batch_size must be a multiple)"),
    "epochs": (int, "passes over the training split"),
    "lora_r": (int, "LoRA rank"),
    "lora_alpha": (int, "LoRA alpha (with use_rslora the adapter's scale is lora_alpha / sqrt(lora_r))"),
    "use_rslora": (int, "1: rank-stabilised LoRA, scale alpha / sqrt(r) (the published runs: alpha = r = 64, scale 8)"),
    "lora_target_modules": (_STR_LIST, "module names that get LoRA adapters"),
    "lr": (float, "peak learning rate"),
    "lr_warmup_frac": (float, "share of steps with linear warm-up"),
    "lr_cooldown_frac": (float, "share of steps with cosine cool-down at the end"),
    "lr_min_frac": (float, "floor of the cool-down as a share of lr (the published schedule: 0.05)"),
    "beta1": (float, "Adam beta1"),
    "beta2": (float, "Adam beta2"),
    "max_grad_norm": (float, "gradient clipping norm"),
    "weight_decay": (float, "AdamW weight decay"),
    "lora_dropout": (float, "LoRA dropout"),
    "eps": (float, "Adam epsilon"),
    "num_samples": (int, "training samples to use after a seeded shuffle, -1 = all"),
    "log_every": (int, "optimizer steps between log lines"),
    "checkpoints_per_epoch": (int, "checkpoints written per epoch"),
    "validation_intervention": (_STR_OR_STR_LIST, "the fixed intervention(s) the validation check asks, the same "
                                                  "for every sample whatever its flag (as evaluate.py; its default "
                                                  "string); a list is asked in turn, sample i gets entry i mod length"),
    "validation_review_samples": (int, "validation samples (seeded choice) reviewed by greedy generation with "
                                       "validation_intervention at every checkpoint: the headline flag_accuracy "
                                       "(default 100, all when fewer); 0: no such check"),
    "validation_review_max_new_tokens": (int, "token limit of those reviews (an unfinished review has no flag)"),
}
ELICITATION_TYPES = ("hp", "up", "ur")
MITIGATION_MODES = ("drop_citing", "exempt")
ELIGIBILITY_SOURCES = ("regex", "llm")


def _check_type(key: str, value: Any, expected: Any, where: str) -> Any:
    if expected == _STR_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(f"{where}: key {key!r} must be a list of strings")
        return value
    if expected == _STR_OR_STR_LIST:
        if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            return value
        raise DataError(f"{where}: key {key!r} must be a string or a non-empty list of strings")
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{where}: key {key!r} must be a number")
        return float(value)
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{where}: key {key!r} must be an integer")
        return value
    if not isinstance(value, expected):
        raise DataError(f"{where}: key {key!r} must be a {expected.__name__}")
    return value


def _unknown_key_error(key: str, where: str) -> DataError:
    close = difflib.get_close_matches(key, SCHEMA, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(f"{where}: unknown key {key!r}{hint}")


def validate_training_config(raw: Any, where: str) -> dict[str, Any]:
    """Check every key of `raw`; returns a new dict with numbers normalised."""
    if not isinstance(raw, dict):
        raise DataError(f"{where}: the config must be a JSON object")
    for key in raw:
        if key not in SCHEMA:
            raise _unknown_key_error(key, where)
    missing = [key for key in SCHEMA if key not in raw]
    if missing:
        raise DataError(f"{where}: missing key(s): {', '.join(missing)}")
    config = {key: _check_type(key, raw[key], SCHEMA[key][0], where) for key in SCHEMA}

    if not config["train_topics"]:
        raise DataError(f"{where}: key 'train_topics' is empty: no item could go to the training split")
    for key in ("train_topics", "validation_topics"):
        for topic in config[key]:
            if topic not in TOPICS:
                raise DataError(f"{where}: key {key!r}: unknown topic {topic!r}")
    for tag in config["tags_to_filter"]:
        if tag not in TAG_ORDER:
            close = difflib.get_close_matches(tag, TAG_ORDER, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (python scripts/tag_stage_3_data.py --list_tags)"
            raise DataError(f"{where}: key 'tags_to_filter': unknown tag {tag!r}{hint}")
    for name in config["intervention_types"]:
        family, _, version = name.partition("__")
        if family not in INTERVENTION_TYPES or not version:
            raise DataError(f"{where}: key 'intervention_types': {name!r} is not <type>__<version>")
    unseen = [name for name in config["intervention_types"] if name.partition("__")[0] == UNSEEN_INTENT]
    if unseen and not config["unseen_intent"]:
        raise DataError(f"{where}: key 'intervention_types' names {', '.join(unseen)} but key 'unseen_intent' is false; "
                        "set 'unseen_intent': true to export unseen-intent samples, or remove them")
    if config["unseen_intent_response_tokens"] < 0:
        raise DataError(f"{where}: key 'unseen_intent_response_tokens' must be 0 or more")
    if config["elicitation_type"] not in ELICITATION_TYPES:
        raise DataError(f"{where}: key 'elicitation_type' must be one of {', '.join(ELICITATION_TYPES)}")
    if config["mitigation_mode"] not in MITIGATION_MODES:
        raise DataError(f"{where}: key 'mitigation_mode' must be one of {', '.join(MITIGATION_MODES)}")
    if config["eligibility_source"] not in ELIGIBILITY_SOURCES:
        raise DataError(f"{where}: key 'eligibility_source' must be one of {', '.join(ELIGIBILITY_SOURCES)}")
    for key in ("validation_fraction", "remove_system_prompt_fraction", "swap_a_b_fraction", "off_policy_detection_fraction",
                "shortcut_warning_margin",
                "lr_warmup_frac", "lr_cooldown_frac", "lr_min_frac", "lora_dropout"):
        if not 0.0 <= config[key] <= 1.0:
            raise DataError(f"{where}: key {key!r} must lie in [0, 1]")
    if config["lr_warmup_frac"] + config["lr_cooldown_frac"] > 1.0:
        raise DataError(f"{where}: keys 'lr_warmup_frac' + 'lr_cooldown_frac' exceed 1")
    for key in ("add_sp_token", "lora_patch", "use_rslora"):
        if config[key] not in (0, 1):
            raise DataError(f"{where}: key {key!r} must be 0 or 1")
    for key in ("seq_len", "batch_size", "micro_batch_size", "epochs", "lora_r", "lora_alpha",
                "log_every", "checkpoints_per_epoch", "validation_review_max_new_tokens"):
        if config[key] < 1:
            raise DataError(f"{where}: key {key!r} must be at least 1")
    if config["lr"] <= 0:
        raise DataError(f"{where}: key 'lr' must be above 0, got {config['lr']:g}")
    if config["batch_size"] % config["micro_batch_size"]:
        raise DataError(f"{where}: key 'batch_size' must be a multiple of 'micro_batch_size'")
    folds = config["leave_topics_out_folds"]
    if folds == 1 or folds < 0:
        raise DataError(f"{where}: key 'leave_topics_out_folds' must be 0 (off) or at least 2")
    if folds > len(config["train_topics"]):
        raise DataError(f"{where}: key 'leave_topics_out_folds' is {folds}, more than the {len(config['train_topics'])} "
                        "train_topics to fold")
    if config["validation_review_samples"] < 0:
        raise DataError(f"{where}: key 'validation_review_samples' must be 0 (off) or positive")
    if config["num_samples"] < -1 or config["num_samples"] == 0:
        raise DataError(f"{where}: key 'num_samples' must be -1 (all) or positive")
    return config


def load_training_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read, apply `overrides` (e.g. from the command line) and validate the config."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    raw = read_json(path)
    where = display_path(path)
    if overrides:
        if not isinstance(raw, dict):
            raise DataError(f"{where}: the config must be a JSON object")
        for key in overrides:
            if key not in SCHEMA:
                raise _unknown_key_error(key, "command-line override")
        raw = {**raw, **overrides}
    return validate_training_config(raw, where)
