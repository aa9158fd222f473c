"""The pieces of stage-2 inference, in process: batch planning, the thinking split, and the
transformers engine on tiny models (left padding, stop tokens, sampling records, LoRA merge)."""

from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from repo import REPO_ROOT
from transformers import AutoModelForCausalLM

from spt.stage_2.engine import (
    Generation,
    SamplingSettings,
    plan_batches,
    split_thinking,
    split_thinking_text,
    trim_at_stop,
)
from spt.stage_2.files import Job, Stage2Files
from spt.stage_2.local import LocalEngine
from spt.training.tiny_model import build_tiny_model

OPEN, CLOSE, STOP = 90, 91, 99


def test_plan_batches_groups_similar_lengths_longest_first():
    lengths = [5, 50, 7, 49, 6, 51, 8]
    batches = plan_batches(lengths, 3)
    assert [sorted(lengths[i] for i in batch) for batch in batches] == [[49, 50, 51], [6, 7, 8], [5]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))


def test_trim_at_stop_keeps_the_stop_token_and_drops_padding():
    assert trim_at_stop([1, 2, STOP, STOP, STOP], {STOP}) == ([1, 2, STOP], True)
    assert trim_at_stop([1, 2, 3], {STOP}) == ([1, 2, 3], False)


@pytest.mark.parametrize(
    "ids, prompt_opens, expected",
    [
        ([OPEN, 1, 2, CLOSE, 3, 4], False, ([1, 2], [3, 4])),  # the model opens and closes the block
        ([1, 2, CLOSE, 3], True, ([1, 2], [3])),  # the prompt opened it
        ([1, 2, 3], True, ([1, 2, 3], [])),  # cut off while thinking
        ([OPEN, 1, 2], False, ([1, 2], [])),  # opened by the model and cut off
        ([1, 2, 3], False, ([], [1, 2, 3])),  # no thinking at all
    ],
)
def test_split_thinking(ids, prompt_opens, expected):
    assert split_thinking(ids, OPEN, CLOSE, prompt_opens) == expected


def test_split_thinking_without_think_tokens_is_all_answer():
    assert split_thinking([1, 2, 3], None, None, False) == ([], [1, 2, 3])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>\nweighing it\n</think>\n\nPASS", ("weighing it", "PASS")),
        ("weighing it</think>PASS", ("weighing it", "PASS")),
        ("  just the answer\n", ("", "just the answer")),
    ],
)
def test_split_thinking_text(text, expected):
    assert split_thinking_text(text) == expected


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("engine") / "llama", "llama3")


def test_batched_greedy_generation_equals_one_prompt_at_a_time(llama_dir):
    engine = LocalEngine(str(llama_dir))
    settings = SamplingSettings(max_new_tokens=8, temperature=0)
    prompts = [
        engine.encode("You are helpful.", "Hi?", False),
        engine.encode("You are a very careful and honest assistant.", "Is the review honest and complete?", False),
        engine.encode("", "What is the capital of France?", False),
    ]
    assert len({len(prompt) for prompt in prompts}) == 3  # left padding is really exercised
    batched = engine.generate(prompts, settings)
    single = [engine.generate([prompt], settings)[0] for prompt in prompts]
    for together, alone, prompt in zip(batched, single, prompts):
        assert (together.text, together.output_tokens, together.finish_reason) == (
            alone.text,
            alone.output_tokens,
            alone.finish_reason,
        )
        assert together.input_tokens == len(prompt)
    # BOS comes once, from the template.
    assert all(prompt.count(engine.tokenizer.bos_token_id) == 1 for prompt in prompts)


def test_sampling_record_follows_flags_then_model_defaults(llama_dir):
    engine = LocalEngine(str(llama_dir))
    engine.model.generation_config.top_p = 0.8
    assert engine.effective_sampling(SamplingSettings(8, temperature=0.7)) == {
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 50,
    }
    assert engine.effective_sampling(SamplingSettings(8, temperature=0.7, top_p=0.5, top_k=20)) == {
        "temperature": 0.7,
        "top_p": 0.5,
        "top_k": 20,
    }
    assert engine.effective_sampling(SamplingSettings(8, temperature=0)) == {
        "temperature": 0.0,
        "top_p": None,
        "top_k": None,
    }
    assert not engine.thinking_enabled(SamplingSettings(8, enable_thinking=True))  # llama's template takes none


def test_merge_lora_generates_with_the_merged_adapter(llama_dir, tmp_path):
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    adapter = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    )
    adapter.save_pretrained(tmp_path / "adapter")
    expected = adapter.merge_and_unload()

    merged = LocalEngine(str(llama_dir), merge_lora=str(tmp_path / "adapter"))
    plain = LocalEngine(str(llama_dir))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(merged.model.state_dict()[name], expected.state_dict()[name])
    assert not torch.allclose(merged.model.state_dict()[name], plain.model.state_dict()[name])
    prompt = plain.encode("You are helpful.", "Is it PASS?", False)
    settings = SamplingSettings(max_new_tokens=8, temperature=0)
    assert merged.generate([prompt], settings)[0].text != plain.generate([prompt], settings)[0].text


def test_stage_2_entries_carry_every_published_field(tmp_path):
    """Our entries have every field the published stage-2 data has (docs/data_formats.md §4.2), with the same types."""
    reference = REPO_ROOT.parent / "shared" / "reference-data" / "stage_3_tagged"
    published_files = sorted(reference.glob("*/*.json"))
    if not published_files:
        pytest.skip("reference data not available")
    published = json.loads(published_files[0].read_text())["data"][0]["inferences"]["qwen/qwen3-32b"]["A"]
    published = {key: value for key, value in published.items() if key not in ("tags", "interventions")}

    files = Stage2Files(
        model_key="org/model",
        num_samples=1,
        engine="local",
        recorded_sampling={"temperature": 0.7, "top_p": 0.8, "top_k": 20, "thinking_enabled": False},
    )
    path = tmp_path / "batch.json"
    files.docs[path] = {"data": [{"A": "system", "T": "task"}]}
    files.store(Job(path, 0, "A", "system", "task", [0]), [Generation("answer", "", 12, 5, "stop", 0.5)])
    ours = files.docs[path]["data"][0]["inferences"]["org/model"]["A"]
    assert set(published) <= set(ours)
    assert {key: type(value) for key, value in published.items()} == {key: type(ours[key]) for key in published}
