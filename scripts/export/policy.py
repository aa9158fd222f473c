"""Whose answer a sample shows, and so its policy label (docs/data_formats.md §6).

A sample is on-policy only when its S was written by the model being trained and it is shown
with exactly the system prompt S was generated under. The trained model's stage-2 id is the
config key `trained_model_data_id`, or, when that is empty, `base_model` itself; either is
compared with the sample's stage-2 model id case-insensitively (stage-2 ids are lower-case
provider style, `meta-llama/llama-3.3-70b-instruct`; a Hugging Face id is `meta-llama/Llama-3.3-70B-Instruct`).
Reads nothing; writes nothing.
"""
from __future__ import annotations

from typing import Any


def trained_model_data_id(config: dict[str, Any]) -> str:
    """The stage-2 model id whose answers the trained model wrote (lower-case)."""
    return (config["trained_model_data_id"] or config["base_model"]).strip().lower()


def is_own_answer(model_id: str, config: dict[str, Any]) -> bool:
    """True when the stage-2 answers of `model_id` were written by the model being trained."""
    return model_id.strip().lower() == trained_model_data_id(config)
