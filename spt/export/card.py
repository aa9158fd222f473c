"""The dataset card of a training export: `README.md` in the export folder (and in each fold folder),
in the Hugging Face dataset card format, YAML front matter then Markdown
(https://huggingface.co/docs/hub/datasets-cards). The front matter's `configs` map the split files
(https://huggingface.co/docs/hub/datasets-manual-configuration), so `datasets.load_dataset(<export
folder>)` loads `train`, `validation` and `heldout_topics`, and `dataset_info` declares every field's
type, so each split loads with one schema however its nulls fall. An empty file is left out of
`configs` (datasets refuses a split without data). Further configs: `fold_<i>` (a leave-topics-out
set) and `cites_system_prompt` (the samples set aside, split `set_aside`). The Markdown states the
splits, the fields, the filters with their counts, the policy counts, the shortcut measures, the
models and the prompt hashes, all read from the export's statistics (export_stats.json). Writes nothing.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import DatasetCardData

from spt import utils
from spt.export.report import indistinguishable_section, policy_section, shortcut_table

# name -> (datasets feature, meaning): the sample keys in file order (export.run.SAMPLE_KEYS).
FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "id_string": ({"dtype": "string"}, "the intervention's id (file, item, data model, variant, intervention key)"),
    "id_numeric": ({"dtype": "int64"}, "the intervention's number (null for a detection sample)"),
    "source_file": ({"dtype": "string"}, "the tagged stage-3 file, relative to the data folder"),
    "item_index": ({"dtype": "int64"}, "the item's index in that file"),
    "topic": ({"dtype": "string"}, "the alignment topic"),
    "model": ({"dtype": "string"}, "the data model: the stage-2 target model whose answer the item holds"),
    "variant": ({"dtype": "string"}, "`A` (neutral system prompt) or `B` (biased one)"),
    "system_prompt": ({"dtype": "string"}, "the system prompt as shown (empty when removed)"),
    "system_prompt_source": ({"dtype": "string"}, "`A`, `B`, `A->B`, `B->A` (swapped) or `none` (removed)"),
    "T": ({"dtype": "string"}, "the task (user message)"),
    "S": ({"dtype": "string"}, "the model's answer"),
    "intervention_key": ({"dtype": "string"}, "`<family>__<version>` of the intervention"),
    "intervention_type": ({"dtype": "string"}, "`split_personality`, `honesty_scare` or `unseen_intent`"),
    "I": (
        {"dtype": "string"},
        "the intervention (split_personality, unseen_intent: starts with `<split-personality-token>`)",
    ),
    "R": ({"dtype": "string"}, "the review, first person"),
    "P": ({"dtype": "string"}, "the flag: `PASS`, `FAIL` or `AMBIGUOUS`"),
    "policy": (
        {"dtype": "string"},
        "`on` only when S is the trained model's own answer under its own prompt, else `off`",
    ),
    "task": ({"dtype": "string"}, "`review` or `off_policy_detection`"),
    "S_source_model": ({"dtype": "string"}, "the model whose answer S is"),
    "layout": ({"dtype": "string"}, "`standard`, or `unseen_intent` (S not shown in training)"),
    "verification": (
        {
            "struct": [
                {"name": "status", "dtype": "string"},
                {"name": "consistency", "dtype": "float64"},
                {"name": "p_value", "dtype": "float64"},
                {"name": "K", "dtype": "int64"},
            ]
        },
        "the causal verification of the item's A/B factor: `status` and, when judged, its numbers",
    ),
}
SET_ASIDE_FIELD = {"name": "split", "dtype": "string"}  # cites_system_prompt.jsonl: the split it was taken from
SPLIT_FILES = ("train", "validation", "heldout_topics")  # split name = file name without .jsonl
CITING = "cites_system_prompt"
ROLES = {
    "stage_1_generator": "stage 1 generator (A, B, T)",
    "target": "target model (S, stage 2)",
    "stage_3_generator": "stage 3 generator (I, R, P)",
    "stage_3_reviewer": "stage 3 quality reviewer",
}


def _features(extra: tuple[dict[str, Any], ...] = ()) -> list[dict[str, Any]]:
    return [{"name": name, **feature} for name, (feature, _) in FIELDS.items()] + list(extra)


def _split_files(split_stats: dict[str, Any], folder: str = "") -> list[dict[str, str]]:
    """The `data_files` of the splits that hold samples."""
    return [{"split": name, "path": f"{folder}{name}.jsonl"} for name in SPLIT_FILES if split_stats[name]["samples"]]


def front_matter(stats: dict[str, Any]) -> DatasetCardData:
    """The card's YAML: one config per loadable set, each with its declared features."""
    configs = [{"config_name": "default", "data_files": _split_files(stats["splits"])}]
    for fold in stats.get("leave_topics_out", {}).get("sets", []):
        configs.append(
            {
                "config_name": fold["folder"],
                "data_files": [
                    {"split": name, "path": f"{fold['folder']}/{name}.jsonl"} for name in SPLIT_FILES if fold[name]
                ],
            }
        )
    if stats["dropped_citing"]:
        configs.append({"config_name": CITING, "data_files": [{"split": "set_aside", "path": f"{CITING}.jsonl"}]})
    info = [
        {
            "config_name": config["config_name"],
            "features": _features((SET_ASIDE_FIELD,) if config["config_name"] == CITING else ()),
        }
        for config in configs
    ]
    return DatasetCardData(
        pretty_name="Split Personality Training export",
        tags=["split-personality-training"],
        configs=configs,
        dataset_info=info,
    )


def _count_table(header: str, counts: dict[str, int]) -> list[str]:
    return utils.markdown_table([header, "samples"], [[name, count] for name, count in counts.items()])


def _splits_section(stats: dict[str, Any]) -> list[str]:
    rows = [
        [
            name,
            f"`{name}.jsonl`",
            split["samples"],
            split["items"],
            ", ".join(f"{topic} {count}" for topic, count in split["topics"].items()) or "none",
        ]
        for name, split in stats["splits"].items()
    ]
    lines = [
        "## Splits",
        "",
        "`heldout_topics` holds the topics outside train_topics and validation_topics: for "
        "evaluation only, never trained on. A split without samples is no split of `load_dataset` (its file "
        "is empty).",
        "",
        *utils.markdown_table(["split", "file", "samples", "items", "topics"], rows),
        "",
    ]
    folds = stats.get("leave_topics_out")
    if folds:
        lines += [
            f"Leave-topics-out: {folds['folds']} complete sets, config `fold_<i>` (folder `fold_<i>/`, each "
            "with its own card), fold i's topics held out of training:",
            "",
            *utils.markdown_table(
                ["config", "held-out topics", *SPLIT_FILES],
                [
                    [fold["folder"], ", ".join(fold["topics"]), *(fold[name] for name in SPLIT_FILES)]
                    for fold in folds["sets"]
                ],
            ),
            "",
        ]
    if stats["dropped_citing"]:
        lines += [
            f"{stats['dropped_citing']} samples citing their system prompt were set aside (mitigation_mode "
            f"drop_citing): config `{CITING}`, split `set_aside`, with the extra field `split`; not trained on.",
            "",
        ]
    return lines


def _filters_section(stats: dict[str, Any]) -> list[str]:
    return [
        "## Filters and their counts",
        "",
        f"Samples remaining after each selection stage (data models {', '.join(stats['data_models'])}; "
        f"intervention types {', '.join(stats['intervention_types'])}):",
        "",
        *utils.markdown_table(["stage", "remaining"], [[row["stage"], row["remaining"]] for row in stats["stages"]]),
        "",
        "Tag filters (`tags_to_filter`): individual counts the samples carrying the tag, cumulative those "
        "dropped by it and by no tag listed before it.",
        "",
        *utils.markdown_table(
            ["tag", "individual", "cumulative"],
            [[tag, drops["individual"], drops["cumulative"]] for tag, drops in stats["tag_drops"].items()],
        ),
        "",
        *indistinguishable_section(stats),
    ]


def _models_section(stats: dict[str, Any]) -> list[str]:
    provenance = stats["provenance"]
    rows = [
        [ROLES[role], ", ".join(f"`{model}` ({count})" for model, count in counts.items()) or "none"]
        for role, counts in provenance["models"].items()
    ]
    return [
        "## Models",
        "",
        f"Who wrote the {provenance['review_samples']} exported review samples (samples per "
        f"model). Trained model (its answers are on-policy): `{stats['trained_model_data_id']}`.",
        "",
        *utils.markdown_table(["role", "models"], rows),
        "",
    ]


def _hashes_section(stats: dict[str, Any]) -> list[str]:
    rows = [
        [stage, f"`{prompt}`", f"`{sha}`", count]
        for stage, prompts in stats["provenance"]["prompt_sha256"].items()
        for prompt, shas in prompts.items()
        for sha, count in shas.items()
    ]
    return [
        "## Prompt hashes",
        "",
        "SHA-256 of every prompt file (under `prompts/`) the exported review samples "
        "were generated with, and how many samples each version made (`export`: the detection samples' "
        "prompt file).",
        "",
        *utils.markdown_table(["stage", "prompt file", "SHA-256", "samples"], rows),
        "",
    ]


def _fields_section() -> list[str]:
    return [
        "## Fields",
        "",
        "One sample per line (docs/data_formats.md §6 of the pipeline).",
        "",
        *utils.markdown_table(
            ["field", "type", "meaning"],
            [[f"`{name}`", feature.get("dtype", "struct"), meaning] for name, (feature, meaning) in FIELDS.items()],
        ),
        "",
    ]


def dataset_card(stats: dict[str, Any], export_id: str) -> str:
    """The card (README.md) of the export with statistics `stats` and id `export_id`."""
    card_data = front_matter(stats)
    configs = ", ".join(f"`{config['config_name']}`" for config in card_data.configs)
    lines = [
        "---",
        card_data.to_yaml(),
        "---",
        "",
        f"# Split Personality Training export {export_id}",
        "",
        "Training samples for an honest persona: after the split-personality token the model reviews its own "
        "answer S to task T under system prompt A or B and gives a flag. Made by the SPT pipeline's "
        f"`scripts/export_training_data.py` (config `{stats['config']}`, data `{stats['data_dir']}`, seed "
        f"{stats['seed']}); export id `{export_id}` (export_manifest.json: each data file's SHA-256; this card "
        "is not among them). Full statistics: `export_stats.json`, `export_report.md`.",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'splits = load_dataset("<this folder or Hub repo>")   # '
        + ", ".join(item["split"] for item in _split_files(stats["splits"])),
        "```",
        "",
        f"Configs: {configs}.",
        "",
        *(["## Warnings", "", *(f"- {warning}" for warning in stats["warnings"]), ""] if stats["warnings"] else []),
        *_splits_section(stats),
        *_fields_section(),
        *_filters_section(stats),
        *policy_section(stats),
        *shortcut_table(stats),
        *_models_section(stats),
        *_hashes_section(stats),
        "## Intended use and limits",
        "",
        "For training and evaluating split-personality reviewers (LoRA adapters) and for research on "
        "self-review. The texts are model-written, mostly synthetic scenarios of misaligned behaviour "
        "(sycophancy, jailbreaks, reward hacking, ...): B answers are deliberately problematic. Flags and "
        "reviews come from a generator model and pass automatic checks only; they are not human labels. "
        "The measured shortcuts above are lower bounds.",
        "",
    ]
    return "\n".join(lines)
