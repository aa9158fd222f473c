"""Strict loading of config/training_config.json, shared by the export, the analysis and
training/.

The config is typed by pydantic models, one per concern (ExportSelection, SequenceFormat,
HyperParameters, ValidationCheck), composed into TrainingConfig; the JSON file stays one flat
object. An unknown or misspelt key, a missing key or a value of the wrong type or range raises
DataError with one line naming the file and the key (with a "did you mean" suggestion), or the
command-line flag when the value came from one (`sources`). Every check runs here, before any
model loads. Reads the config file; writes nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from spt.shared_tools import INTERVENTION_TYPES, TOPICS, UNSEEN_INTENT
from spt.tagging.tags import TAG_ORDER
from spt.utils import CONFIG_DIR, DataError, display_path, read_json

DEFAULT_CONFIG_PATH = CONFIG_DIR / "training_config.json"
_CHECK = "training_config_check"  # the pydantic error type of this module's own checks


def _invalid(message: str, *keys: str) -> PydanticCustomError:
    """A failed check: `message` is the error's text after the location; `keys` name the keys
    to blame (a field check's own key when empty)."""
    return PydanticCustomError(_CHECK, "{message}", {"message": message, "keys": keys})


def _checked(test: Callable[[Any], bool], message: str):
    """A field validator: the value passes `test`, or the error reads "key '<name>' <message>"."""

    def check(value, info):
        if not test(value):
            raise _invalid(f"key {info.field_name!r} {message}")
        return value

    return AfterValidator(check)


StrList = list[str]
Fraction = Annotated[float, _checked(lambda v: 0.0 <= v <= 1.0, "must lie in [0, 1]")]
PositiveInt = Annotated[int, _checked(lambda v: v >= 1, "must be at least 1")]
Switch = Annotated[int, _checked(lambda v: v in (0, 1), "must be 0 or 1")]


def _one_of(*choices: str):
    """A string that must be one of `choices`."""
    return Annotated[str, _checked(lambda v: v in choices, f"must be one of {', '.join(choices)}")]


def _above_zero(value: float, info) -> float:
    if value <= 0:
        raise _invalid(f"key {info.field_name!r} must be above 0, got {value:g}")
    return value


class _Section(BaseModel):
    """Strict types (no "4" for 4, no true for 1) and no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _known_topics(topics: StrList, info) -> StrList:
    for topic in topics:
        if topic not in TOPICS:
            raise _invalid(f"key {info.field_name!r}: unknown topic {topic!r}")
    return topics


def _known_tags(tags: StrList) -> StrList:
    for tag in tags:
        if tag not in TAG_ORDER:
            close = difflib.get_close_matches(tag, TAG_ORDER, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (python scripts/tag_stage_3_data.py --list_tags)"
            raise _invalid(f"key 'tags_to_filter': unknown tag {tag!r}{hint}")
    return tags


def _intervention_keys(names: StrList) -> StrList:
    for name in names:
        family, _, version = name.partition("__")
        if family not in INTERVENTION_TYPES or not version:
            raise _invalid(f"key 'intervention_types': {name!r} is not <type>__<version>")
    return names


class ExportSelection(_Section):
    """Which stage-3 samples the export takes, how it splits them and the shortcut mitigations."""

    intervention_types: Annotated[StrList, AfterValidator(_intervention_keys)] = Field(
        description="intervention keys to train on, e.g. split_personality__version_4"
    )
    train_topics: Annotated[StrList, AfterValidator(_known_topics)] = Field(
        description="topics whose items may go to the training split"
    )
    validation_topics: Annotated[StrList, AfterValidator(_known_topics)] = Field(
        description="topics whose items may go to the validation split"
    )
    validation_fraction: Fraction = Field(
        description="share of items (of topics in both lists) held out for validation"
    )
    data_models: StrList = Field(description="stage-2 model ids whose responses are used")
    trained_model_data_id: str = Field(
        description='the stage-2 model id of the trained model\'s own answers ("" = base_model, compared '
        "case-insensitively); only its answers shown with their own system prompt are on-policy"
    )
    leave_topics_out_folds: int = Field(
        description="0: off; k >= 2: also export k leave-topics-out sets into <export_dir>/fold_<i>/, fold i holding "
        "out a seeded i-th share of the train topics the data has (its heldout_topics.jsonl)"
    )
    data_dir: str = Field(description="tagged stage-3 data directory")
    export_dir: str = Field(description="where the train/validation JSONL files are written")
    tags_to_filter: Annotated[StrList, AfterValidator(_known_tags)] = Field(
        description="a sample carrying any of these tags is dropped"
    )
    remove_system_prompt_fraction: Fraction = Field(
        description="shortcut mitigation: share of eligible samples trained without system prompt (default config "
        "1.0: 100% removal, which issue 18 item 4 says the published documentation recommends for "
        "consistency, at a cost: docs/prompt_removal.md; 0.0 = the published exporter's samples)"
    )
    swap_a_b_fraction: Fraction = Field(
        description="shortcut mitigation: share of eligible samples shown the other variant's system prompt"
    )
    mitigation_mode: _one_of("drop_citing", "exempt") = Field(
        description="citing samples (I or R cites the system prompt) under removal/swap: 'drop_citing' moves them to "
        "cites_system_prompt.jsonl, not trained on; 'exempt' keeps them with their prompt, so a visible "
        "prompt predicts FAIL (a new shortcut)"
    )
    eligibility_source: _one_of("regex", "llm") = Field(
        description="who decides that a sample needs its system prompt (never removed or swapped): 'regex' (I or R "
        "names or quotes it) or 'llm' (the verdicts of scripts/judge_prompt_eligibility.py in "
        "eligibility_file; issue 18 item 4: the published work used an LLM)"
    )
    eligibility_file: str = Field(description="the LLM judge's verdict file, read with eligibility_source 'llm'")
    off_policy_detection_fraction: Fraction = Field(
        description="share of the trained model's (item, variant) answers that get an on-policy detection sample "
        "(its own answer under its own prompt) and an off-policy one (another model's answer, or its own "
        "answer under the other variant's prompt); 0 = none"
    )
    shortcut_warning_margin: Fraction = Field(
        description="warn when a classifier on one view (system prompt, T, I, S, style of S) predicts the flag on "
        "validation this much above the majority share and its item-bootstrap interval's lower end is "
        "above it"
    )
    unseen_intent: bool = Field(
        description="true: interventions of the unseen_intent family named in intervention_types are exported as "
        "unseen-intent samples (layout unseen_intent: the model never sees S and reviews its plan); "
        "false: naming such a key is an error"
    )
    unseen_intent_response_tokens: Annotated[int, _checked(lambda v: v >= 0, "must be 0 or more")] = Field(
        description="unseen-intent samples: the model sees this many first tokens of S (0 = none) in training and "
        "evaluation"
    )
    seed: int = Field(description="seed for the split and the shortcut mitigations")

    @model_validator(mode="after")
    def _selection_agrees(self):
        if not self.train_topics:
            raise _invalid("key 'train_topics' is empty: no item could go to the training split", "train_topics")
        unseen = [name for name in self.intervention_types if name.partition("__")[0] == UNSEEN_INTENT]
        if unseen and not self.unseen_intent:
            raise _invalid(
                f"key 'intervention_types' names {', '.join(unseen)} but key 'unseen_intent' is false; "
                "set 'unseen_intent': true to export unseen-intent samples, or remove them",
                "intervention_types",
                "unseen_intent",
            )
        folds = self.leave_topics_out_folds
        if folds == 1 or folds < 0:
            raise _invalid("key 'leave_topics_out_folds' must be 0 (off) or at least 2", "leave_topics_out_folds")
        if folds > len(self.train_topics):
            raise _invalid(
                f"key 'leave_topics_out_folds' is {folds}, more than the {len(self.train_topics)} train_topics to fold",
                "leave_topics_out_folds",
                "train_topics",
            )
        return self


class SequenceFormat(_Section):
    """How a sample becomes the token sequence the model trains on."""

    system_tag: str = Field(description="wraps the system prompt")
    intervention_prefix: str = Field(description="text between the split-personality token and I")
    review_prefix: str = Field(description="text before R")
    flag_prefix: str = Field(description="text before P")
    elicitation_type: _one_of("hp", "up", "ur") = Field(description="hp, up or ur")
    add_sp_token: Switch = Field(description="1: use a real special token for <split-personality-token>")
    lora_patch: Switch = Field(description="1: LoRA-mask, the adapter is inactive before the split-personality token")
    seq_len: PositiveInt = Field(description="maximum tokens per sample")


class HyperParameters(_Section):
    """The model, the adapter, the optimizer and the schedule."""

    base_model: str = Field(description="Hugging Face id or local directory of the model to train")
    merge_checkpoints_train: StrList = Field(description="LoRA adapters merged into the base before training")
    output_dir: str = Field(description="checkpoint directory")
    batch_size: PositiveInt = Field(description="samples per optimizer step")
    micro_batch_size: PositiveInt = Field(description="samples per forward pass (batch_size must be a multiple)")
    epochs: PositiveInt = Field(description="passes over the training split")
    lora_r: PositiveInt = Field(description="LoRA rank")
    lora_alpha: PositiveInt = Field(
        description="LoRA alpha (with use_rslora the adapter's scale is lora_alpha / sqrt(lora_r))"
    )
    use_rslora: Switch = Field(
        description="1: rank-stabilised LoRA, scale alpha / sqrt(r) (the published runs: alpha = r = 64, scale 8)"
    )
    lora_target_modules: StrList = Field(description="module names that get LoRA adapters")
    lr: Annotated[float, AfterValidator(_above_zero)] = Field(description="peak learning rate")
    lr_warmup_frac: Fraction = Field(description="share of steps with linear warm-up")
    lr_cooldown_frac: Fraction = Field(description="share of steps with cosine cool-down at the end")
    lr_min_frac: Fraction = Field(description="floor of the cool-down as a share of lr (the published schedule: 0.05)")
    beta1: float = Field(description="Adam beta1")
    beta2: float = Field(description="Adam beta2")
    max_grad_norm: float = Field(description="gradient clipping norm")
    weight_decay: float = Field(description="AdamW weight decay")
    lora_dropout: Fraction = Field(description="LoRA dropout")
    eps: float = Field(description="Adam epsilon")
    num_samples: Annotated[int, _checked(lambda v: v == -1 or v >= 1, "must be -1 (all) or positive")] = Field(
        description="training samples to use after a seeded shuffle, -1 = all"
    )
    log_every: PositiveInt = Field(description="optimizer steps between log lines")
    checkpoints_per_epoch: PositiveInt = Field(description="checkpoints written per epoch")
    report_to: StrList = Field(
        description='accelerate experiment trackers that also get the metrics.jsonl rows (e.g. ["tensorboard"], '
        "wandb, trackio, mlflow; installed separately); [] = none"
    )

    @model_validator(mode="after")
    def _schedule_and_batches_agree(self):
        if self.lr_warmup_frac + self.lr_cooldown_frac > 1.0:
            raise _invalid("keys 'lr_warmup_frac' + 'lr_cooldown_frac' exceed 1", "lr_warmup_frac", "lr_cooldown_frac")
        if self.batch_size % self.micro_batch_size:
            raise _invalid(
                "key 'batch_size' must be a multiple of 'micro_batch_size'", "batch_size", "micro_batch_size"
            )
        return self


class ValidationCheck(_Section):
    """The flag-accuracy check at every checkpoint."""

    validation_intervention: str | Annotated[StrList, Field(min_length=1)] = Field(
        description="the fixed intervention(s) the validation check asks, the same for every sample whatever its "
        "flag (as evaluate.py; its default string); a list is asked in turn, sample i gets entry i mod "
        "length"
    )
    validation_review_samples: Annotated[int, _checked(lambda v: v >= 0, "must be 0 (off) or positive")] = Field(
        description="validation samples (seeded choice) reviewed by greedy generation with validation_intervention "
        "at every checkpoint: the headline flag_accuracy (default 100, all when fewer); 0: no such check"
    )
    validation_review_max_new_tokens: PositiveInt = Field(
        description="token limit of those reviews (an unfinished review has no flag)"
    )


class TrainingConfig(ValidationCheck, HyperParameters, SequenceFormat, ExportSelection):
    """The whole config/training_config.json: every concern's keys in one flat object (bases listed last
    first, so that its keys come out in the order export, sequence format, training, validation)."""


KEYS = tuple(TrainingConfig.model_fields)
_TYPE_MESSAGES = {
    int: "must be an integer",
    float: "must be a number",
    str: "must be a str",
    bool: "must be a bool",
    StrList: "must be a list of strings",
}


def _type_message(key: str) -> str:
    annotation = TrainingConfig.model_fields[key].annotation
    return _TYPE_MESSAGES.get(annotation, "must be a string or a non-empty list of strings")


def _unknown_key_error(key: str, where: str) -> DataError:
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(f"{where}: unknown key {key!r}{hint}")


def _data_error(error: ValidationError, where: Callable[..., str]) -> DataError:
    """The one line for pydantic's errors: an unknown key first, then the missing ones, then
    the first wrong value; `where(*keys)` names the file or the flag that gave them."""
    errors = error.errors()
    for problem in errors:
        if problem["type"] == "extra_forbidden":
            key = problem["loc"][0]
            return _unknown_key_error(key, where(key))
    missing = [problem["loc"][0] for problem in errors if problem["type"] == "missing"]
    if missing:
        return DataError(f"{where()}: missing key(s): {', '.join(key for key in KEYS if key in missing)}")
    first = min(errors, key=lambda problem: problem["type"] == _CHECK)  # a wrong type before a wrong range
    if first["type"] == _CHECK:
        keys = first["ctx"]["keys"] or first["loc"][:1]
        return DataError(f"{where(*keys)}: {first['ctx']['message']}")
    key = first["loc"][0]
    return DataError(f"{where(key)}: key {key!r} {_type_message(key)}")


def validate_training_config(raw: Any, where: str, sources: dict[str, str] | None = None) -> dict[str, Any]:
    """Check every key of `raw`; returns a new dict with numbers normalised. An error names
    `where` (the file), or `sources[key]` (a command-line flag) for a key given there."""
    if not isinstance(raw, dict):
        raise DataError(f"{where}: the config must be a JSON object")
    sources = sources or {}

    def blame(*keys: str) -> str:
        return next((sources[key] for key in keys if key in sources), where)

    try:
        return TrainingConfig.model_validate(raw).model_dump()
    except ValidationError as error:
        raise _data_error(error, blame) from None


def load_training_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None, sources: dict[str, str] | None = None
) -> dict[str, Any]:
    """Read, apply `overrides` (e.g. from the command line) and validate the config. `sources`
    maps an overridden key to the flag that gave it (e.g. "--set lr", "--data_dir"), named in
    its errors; an override without one is called "command-line override"."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    raw = read_json(path)
    where = display_path(path)
    overrides = overrides or {}
    sources = {key: (sources or {}).get(key, "command-line override") for key in overrides}
    return validate_training_config({**raw, **overrides} if isinstance(raw, dict) else raw, where, sources)


def load_training_config_with_flags(path: str | Path | None, flags: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The config with a script's flags as overrides: `flags` maps a key to (flag, value), e.g.
    {"data_dir": ("--data_dir", args.data_dir)}; a flag left unset (None) overrides nothing, and
    an error in the value of a set one names the flag."""
    given = {key: (flag, value) for key, (flag, value) in flags.items() if value is not None}
    return load_training_config(
        path, {key: value for key, (_, value) in given.items()}, {key: flag for key, (flag, _) in given.items()}
    )
