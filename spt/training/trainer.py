"""The LoRA training run behind training/train_lora.py: the honest persona, an adapter that
reviews the model's previous response after the split-personality token.

Reads the training config (already loaded), the export's `train.jsonl` / `validation.jsonl`
and the base model (+ merge_checkpoints_train, merged in first: the "poisoned" model).
Writes checkpoints `checkpoints_per_epoch` times per epoch to `<output_dir>/step_<N>/`
(layout: checkpoints.py): `adapter/` (peft), the tokenizer, the optimizer/scheduler/RNG state
(accelerate) and `training_state.json` (effective config, data SHA-256s, package versions,
step, epoch, split-personality token, validation metrics) and the adapter's model card
(model_card.py). Every logged step appends a row to `<output_dir>/metrics.jsonl` and goes to the
trackers of config key `report_to` (run_metrics.py); `<output_dir>/curves.png` is redrawn at
every checkpoint (curves.py). A resumed run continues exactly, metrics.jsonl included.
Before anything loads, `run` checks that the output folder can be written, that the base
model's name can exist and that the data files are there (one-line DataErrors).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import shutil
import time
from importlib.metadata import version
from pathlib import Path

import torch

from spt import hub, locks
from spt.evaluation.intervals import accuracy_with_interval
from spt.shared_tools import FLAGS, REVIEW_TASK, UNSEEN_INTENT
from spt.training import spt_model
from spt.training.checkpoint_upload import checkpoint_plan
from spt.training.checkpoints import (
    ADAPTER_DIR,
    STATE_FILE,
    checkpoint_dir,
    latest_checkpoint,
    remove_checkpoints,
    remove_partials,
    step_dirs,
)
from spt.training.curves import write_curves
from spt.training.evaluator import DEFAULT_UNSEEN_INTENT_INTERVENTION, greedy_generate, parse_flag, stop_token_ids
from spt.training.model_card import export_of, write_model_card
from spt.training.run_metrics import (
    CURVES_FILE,
    METRICS_FILE,
    TRACKER_DIR,
    TRACKER_PROJECT,
    append_metrics,
    check_trackers,
    read_metrics,
    start_metrics,
    tracker_config,
    tracker_values,
    validation_fields,
)
from spt.training.sequences import (
    IGNORE_INDEX,
    SequenceFormat,
    build_prompt,
    end_of_turn_text,
    review_target_text,
    visible_response,
)
from spt.training.training_data import build_sequences, check_data_files, collate, epoch_order, read_samples, subsample
from spt.training_config import load_training_config
from spt.utils import (
    DataError,
    Interrupted,
    atomic_write_json,
    check_no_file_in_the_way,
    check_writable_dir,
    data_path,
    display_path,
    file_sha256,
    read_json,
    work_path,
)

log = logging.getLogger("spt.training")


# --------------------------------------------------------------------------- pieces


def lr_lambda(total_steps: int, warmup_frac: float, cooldown_frac: float, min_frac: float = 0.0):
    """Linear warm-up, constant, cosine cool-down over the last `cooldown_frac` of the steps to
    `min_frac` of the peak (the published schedule floors at 5 %)."""
    warmup = int(round(total_steps * warmup_frac))
    cooldown = int(round(total_steps * cooldown_frac))
    cooldown_start = total_steps - cooldown

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if step >= cooldown_start and cooldown:
            progress = (step - cooldown_start + 1) / cooldown
            return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def forward_logits(model, batch: dict, lora_patch: int) -> torch.Tensor:
    """Logits with the adapter active where `adapter_mask` is 1 (lora_patch 1) or everywhere."""
    extra = {"alora_offsets": spt_model.adapter_offsets(batch["adapter_mask"])} if lora_patch else {}
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra).logits


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )


def flag_probe(tokenizer, fmt: SequenceFormat, sample: dict, prompt_len: int) -> tuple[int, list[int], int] | None:
    """(logit position, first token of each flag, index of the right flag) for flag accuracy.

    The review is tokenized with each flag in turn; the first token where they differ is the
    flag decision, predicted by the logits one position earlier.
    """
    if sample["P"] not in FLAGS:
        return None
    variants = [
        tokenizer.encode(review_target_text(fmt, sample["R"], flag), add_special_tokens=False) for flag in FLAGS
    ]
    common = 0
    while all(len(v) > common for v in variants) and len({v[common] for v in variants}) == 1:
        common += 1
    candidates = [v[common] if len(v) > common else -1 for v in variants]
    if len(set(candidates)) < len(FLAGS) or -1 in candidates:
        return None
    return prompt_len + common - 1, candidates, FLAGS.index(sample["P"])


def _prompt_length(sequence) -> int:
    return next(i for i, label in enumerate(sequence.labels) if label != IGNORE_INDEX)


def validation_interventions(config: dict) -> list[str]:
    """The fixed intervention(s) of the validation check: config key validation_intervention, a string or a list."""
    value = config["validation_intervention"]
    return [value] if isinstance(value, str) else list(value)


def fixed_intervention_prompts(
    tokenizer, fmt: SequenceFormat, samples: list[dict], interventions: list[str], count: int, seed: int
) -> list[tuple[list[int], str]]:
    """(prompt ids, expected flag) of `count` validation review samples (seeded choice, file order
    kept), each asked a fixed intervention instead of its own I (which can give the flag away):
    the i-th chosen sample gets interventions[i mod len]; an unseen-intent sample is shown as
    trained (S hidden or cut) and asked the evaluation's question about plans. Off-policy
    detection samples are left out: their flag answers "is this my own output?", not the review
    question."""
    judged = [sample for sample in samples if sample["P"] in FLAGS and sample.get("task", REVIEW_TASK) == REVIEW_TASK]
    chosen = sorted(random.Random(seed).sample(range(len(judged)), min(count, len(judged))))
    prompts = []
    for turn, sample in enumerate(judged[i] for i in chosen):
        unseen = sample.get("layout") == UNSEEN_INTENT
        response = visible_response(tokenizer, fmt, sample["S"], sample.get("layout"))
        asked = DEFAULT_UNSEEN_INTENT_INTERVENTION if unseen else interventions[turn % len(interventions)]
        prompts.append(
            (build_prompt(tokenizer, fmt, sample["system_prompt"], sample["T"], response, asked).input_ids, sample["P"])
        )
    return prompts


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class Trainer:
    """Holds model, data and optimizer state; one instance per run."""

    def __init__(self, config: dict, train_file: Path, validation_file: Path | None, resume_dir: Path | None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, ProjectConfiguration, set_seed

        self.config = config
        self.output_dir = work_path(config["output_dir"])
        trackers = config["report_to"]
        self.accelerator = Accelerator(
            log_with=trackers or None,
            project_config=ProjectConfiguration(
                project_dir=str(self.output_dir), logging_dir=str(self.output_dir / TRACKER_DIR)
            )
            if trackers
            else None,
        )
        set_seed(config["seed"])
        self.export = export_of(train_file)
        self.data_files = {display_path(p): file_sha256(p) for p in (train_file, validation_file) if p}
        device = self.accelerator.device
        sharded = self.accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
        if (
            self.accelerator.distributed_type == DistributedType.DEEPSPEED
            and config["batch_size"] != config["micro_batch_size"] * self.accelerator.num_processes
        ):
            # DeepSpeed steps its optimizer inside every backward: no accumulation of our own.
            raise DataError(
                "with DeepSpeed, batch_size must equal micro_batch_size x number of processes "
                f"({config['micro_batch_size']} x {self.accelerator.num_processes})"
            )
        state = read_json(resume_dir / STATE_FILE) if resume_dir else None
        if state and sorted(state["data_sha256"].values()) != sorted(self.data_files.values()):
            raise DataError(
                f"{display_path(resume_dir)}: the data files differ from the ones this checkpoint was trained on"
            )
        if state:
            changed = sorted(key for key in config if state["config"].get(key) != config[key])
            if changed:
                log.warning("resuming with config keys changed since the checkpoint: %s", ", ".join(changed))

        self.tokenizer = spt_model.load_tokenizer(config["base_model"])
        # Sharded runs load on the CPU and let accelerate place the shards.
        model = spt_model.load_base_model(
            config["base_model"],
            config["merge_checkpoints_train"],
            torch.device("cpu") if sharded else device,
            spt_model.base_dtype(device),
        )
        self.sp = spt_model.setup_sp_token(self.tokenizer, model, config["add_sp_token"])
        self.fmt = SequenceFormat.from_config(config, self.sp.ids)
        eot = end_of_turn_text(self.tokenizer, config["elicitation_type"])
        samples = read_samples(train_file)
        if config["num_samples"] > 0:
            samples = subsample(samples, config["num_samples"], config["seed"])
        self.train_seqs, _ = build_sequences(
            self.tokenizer, self.fmt, samples, eot, config["seq_len"], display_path(train_file)
        )
        if not self.train_seqs:
            raise DataError(f"{display_path(train_file)}: no training sample fits in seq_len {config['seq_len']}")
        self.val_seqs, self.val_probes, self.fixed_prompts = [], [], []
        if validation_file:
            val_samples = read_samples(validation_file)
            self.val_seqs, kept = build_sequences(
                self.tokenizer, self.fmt, val_samples, eot, config["seq_len"], display_path(validation_file)
            )
            self.val_probes = [
                flag_probe(self.tokenizer, self.fmt, sample, _prompt_length(seq))
                for sample, seq in zip(kept, self.val_seqs)
            ]
            if config["validation_review_samples"] and sharded:
                log.warning(
                    "validation_review_samples: no fixed-intervention reviews in a sharded (FSDP/DeepSpeed) "
                    "run; run training/evaluate.py on the checkpoints instead"
                )
            elif config["validation_review_samples"]:
                self.fixed_prompts = fixed_intervention_prompts(
                    self.tokenizer,
                    self.fmt,
                    kept,
                    validation_interventions(config),
                    config["validation_review_samples"],
                    config["seed"],
                )
                if len(self.fixed_prompts) < config["validation_review_samples"]:
                    log.warning(
                        "validation_review_samples is %d but %s has %d review samples: the flag accuracy's "
                        "interval is wider",
                        config["validation_review_samples"],
                        display_path(validation_file),
                        len(self.fixed_prompts),
                    )
        self.stop_ids = stop_token_ids(model, self.tokenizer)

        if resume_dir:
            model = spt_model.load_adapter(model, resume_dir / ADAPTER_DIR, trainable=True)
        else:
            model = spt_model.add_lora(model, config, self.sp)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params,
            lr=config["lr"],
            betas=(config["beta1"], config["beta2"]),
            eps=config["eps"],
            weight_decay=config["weight_decay"],
        )
        self.steps_per_epoch = math.ceil(len(self.train_seqs) / config["batch_size"])
        self.total_steps = self.steps_per_epoch * config["epochs"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lr_lambda(self.total_steps, config["lr_warmup_frac"], config["lr_cooldown_frac"], config["lr_min_frac"]),
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        # Not prepared: accelerate would step a prepared scheduler once per process.
        self.scheduler = scheduler
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.accelerator.register_save_state_pre_hook(self._save_adapter_instead_of_model)
        self.accelerator.register_load_state_pre_hook(lambda models, input_dir: models.clear())
        self.step = 0
        self.resumed = resume_dir is not None
        self.history: list[dict] = []
        if resume_dir:
            self.accelerator.load_state(str(resume_dir))
            self.step = state["step"]
            self.history = state["history"]
            log.info("resumed from %s at step %d", display_path(resume_dir), self.step)

    # ----------------------------------------------------------------- checkpoints

    def _save_adapter_instead_of_model(self, models, weights, output_dir):
        """accelerate hook: the checkpoint holds the adapter, not the full model's weights."""
        weights.clear()
        if self.accelerator.is_main_process:
            # The embedding rows of an added token are re-created from the base model
            # (spt_model.grow_embeddings): the adapter stores only its trained delta.
            self.accelerator.unwrap_model(self.model).save_pretrained(
                Path(output_dir) / ADAPTER_DIR, save_embedding_layers=False
            )
            self.tokenizer.save_pretrained(output_dir)

    def save_checkpoint(self, validation: dict | None) -> Path:
        final = checkpoint_dir(self.output_dir, self.step)
        partial = final.with_name(f".{final.name}.partial")
        if self.accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        try:
            self._write_checkpoint(partial, final, validation)
        except BaseException as exc:
            if self.accelerator.is_main_process:  # no half-written save is left for the next run to meet
                shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, RuntimeError) and "write" in str(exc).lower():  # torch.save on a full disk
                raise DataError(
                    f"{display_path(partial)}: cannot save the checkpoint ({str(exc).splitlines()[0]}); "
                    "free space, then --resume latest continues from the last complete one"
                ) from None
            raise
        self.accelerator.wait_for_everyone()
        return final

    def _write_checkpoint(self, partial: Path, final: Path, validation: dict | None) -> None:
        self.accelerator.save_state(str(partial))
        if self.accelerator.is_main_process:
            atomic_write_json(
                partial / STATE_FILE,
                {
                    "step": self.step,
                    "epoch": self.step // self.steps_per_epoch,
                    "position_in_epoch": self.step % self.steps_per_epoch,
                    "steps_per_epoch": self.steps_per_epoch,
                    "total_steps": self.total_steps,
                    "config": self.config,
                    "data_sha256": self.data_files,
                    "versions": {name: version(name) for name in ("torch", "transformers", "peft", "accelerate")},
                    "sp_token": self.sp.to_json(),
                    "validation": validation,
                    "history": self.history,
                },
            )
            write_model_card(
                partial / ADAPTER_DIR,
                config=self.config,
                sp=self.sp.to_json(),
                step=self.step,
                total_steps=self.total_steps,
                data_files=self.data_files,
                export=self.export,
                validation=validation,
            )
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)  # a checkpoint directory only ever appears complete

    def checkpoint_steps(self) -> set[int]:
        per_epoch = self.config["checkpoints_per_epoch"]
        return {
            epoch * self.steps_per_epoch + max(1, round(self.steps_per_epoch * (k + 1) / per_epoch))
            for epoch in range(self.config["epochs"])
            for k in range(per_epoch)
        }

    # ----------------------------------------------------------------- steps

    def _step_sequences(self, step: int):
        epoch, position = divmod(step, self.steps_per_epoch)
        order = epoch_order(len(self.train_seqs), self.config["seed"], epoch)
        batch_size = self.config["batch_size"]
        chosen = order[position * batch_size : (position + 1) * batch_size]
        mine = chosen[self.accelerator.process_index :: self.accelerator.num_processes]
        return [self.train_seqs[i] for i in mine]

    def train_step(self) -> tuple[float, int]:
        """One optimizer step over `batch_size` samples; returns (mean token loss, tokens seen by all processes)."""
        sequences = self._step_sequences(self.step)
        micro = self.config["micro_batch_size"]
        chunks = [sequences[i : i + micro] for i in range(0, len(sequences), micro)]
        device = self.accelerator.device
        local_count = torch.tensor(sum(sum(t != IGNORE_INDEX for t in s.labels[1:]) for s in sequences), device=device)
        global_count = self.accelerator.reduce(local_count.clone(), "sum").clamp(min=1)
        scale = self.accelerator.num_processes / global_count  # DDP averages gradients over processes
        loss_total, tokens = torch.zeros((), device=device), 0
        for index, chunk in enumerate(chunks):
            batch = {k: v.to(device) for k, v in collate(chunk, self.tokenizer.pad_token_id).items()}
            tokens += int(batch["attention_mask"].sum())
            last = index == len(chunks) - 1
            with contextlib.nullcontext() if last else self.accelerator.no_sync(self.model):
                loss_sum = token_loss_sum(forward_logits(self.model, batch, self.config["lora_patch"]), batch["labels"])
                self.accelerator.backward(loss_sum * scale)
            loss_total += loss_sum.detach()
        self.accelerator.clip_grad_norm_(
            [p for p in self.model.parameters() if p.requires_grad], self.config["max_grad_norm"]
        )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        mean_loss = self.accelerator.reduce(loss_total, "sum") / global_count
        return float(mean_loss), int(self.accelerator.reduce(torch.tensor(tokens, device=device), "sum"))

    @torch.no_grad()
    def fixed_intervention_reviews(self) -> tuple[int, int]:
        """(parsed, correct) over the chosen validation samples asked with `validation_intervention`:
        greedy reviews (evaluate.py's generation), flags parsed as evaluate.py parses them."""
        model = self.accelerator.unwrap_model(self.model)
        device = self.accelerator.device
        mine = self.fixed_prompts[self.accelerator.process_index :: self.accelerator.num_processes]
        micro = self.config["micro_batch_size"]
        counts = torch.zeros(2, dtype=torch.long, device=device)
        for start in range(0, len(mine), micro):
            chunk = mine[start : start + micro]
            generations = greedy_generate(
                model,
                self.tokenizer,
                [ids for ids, _ in chunk],
                self.config["validation_review_max_new_tokens"],
                self.stop_ids,
                device,
            )
            for (_, expected), generated in zip(chunk, generations):
                flag = parse_flag(self.tokenizer.decode(generated, skip_special_tokens=True))
                counts += torch.tensor([flag is not None, flag == expected], device=device)
        parsed, correct = self.accelerator.reduce(counts, "sum").tolist()
        return parsed, correct

    @torch.no_grad()
    def validate(self) -> dict | None:
        """Mean token loss and the flag accuracy on validation: generated reviews of the chosen
        samples asked the fixed `validation_intervention` (as the evaluation), with its Wilson
        interval; beside it the teacher-forced flag accuracy (argmax over the flags' first tokens
        after the sample's own I and the gold R: both can give the flag away, so it is not a
        measure of the model and never called flag accuracy)."""
        if not self.val_seqs:
            return None
        self.model.eval()
        device = self.accelerator.device
        loss_sum, count, correct, judged = 0.0, 0, 0, 0
        micro = self.config["micro_batch_size"]
        for start in range(0, len(self.val_seqs), micro):
            chunk = self.val_seqs[start : start + micro]
            batch = {k: v.to(device) for k, v in collate(chunk, self.tokenizer.pad_token_id).items()}
            logits = forward_logits(self.model, batch, self.config["lora_patch"])
            loss_sum += float(token_loss_sum(logits, batch["labels"]))
            count += int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            for row, probe in enumerate(self.val_probes[start : start + micro]):
                if probe is None:
                    continue
                position, candidates, right = probe
                judged += 1
                correct += int(int(logits[row, position, candidates].argmax()) == right)
        reviewed = len(self.fixed_prompts)
        parsed, fixed_correct = self.fixed_intervention_reviews() if reviewed else (0, 0)
        self.model.train()
        headline = accuracy_with_interval(fixed_correct, parsed)
        return {
            "step": self.step,
            "loss": loss_sum / max(count, 1),
            # as evaluate.py's summary: accuracy over the generated reviews whose flag parsed
            "flag_accuracy": headline["accuracy"],
            "flag_accuracy_ci95": headline["ci95"],
            "flag_accuracy_interval": headline["interval"],
            "flag_accuracy_reviews": reviewed,
            "flag_accuracy_parsed": parsed,
            "flag_accuracy_parsed_rate": parsed / reviewed if reviewed else None,
            "flag_accuracy_interventions": validation_interventions(self.config) if reviewed else [],
            "teacher_forced_flag_accuracy": correct / judged if judged else None,
            "teacher_forced_samples": judged,
            "samples": len(self.val_seqs),
        }

    def _start_records(self) -> None:
        """metrics.jsonl, curves.png and the tracker logs: a fresh run starts them anew, a resumed one
        keeps the rows up to its checkpoint (run_metrics.start_metrics); then the trackers start."""
        if self.accelerator.is_main_process:
            start_metrics(self.output_dir / METRICS_FILE, self.step if self.resumed else None)
            if not self.resumed:
                (self.output_dir / CURVES_FILE).unlink(missing_ok=True)
                shutil.rmtree(self.output_dir / TRACKER_DIR, ignore_errors=True)
        if self.config["report_to"]:
            self.accelerator.init_trackers(TRACKER_PROJECT, config=tracker_config(self.config))

    def _record(self, row: dict) -> None:
        """One logged step: a metrics.jsonl row (main process) and the trackers."""
        if self.accelerator.is_main_process:
            append_metrics(self.output_dir / METRICS_FILE, row)
        if self.config["report_to"]:
            self.accelerator.log(tracker_values(row), step=row["step"])

    def _draw_curves(self) -> None:
        if self.accelerator.is_main_process:
            write_curves(
                read_metrics(self.output_dir / METRICS_FILE),
                self.output_dir / CURVES_FILE,
                f"{display_path(self.output_dir)}: {self.config['base_model']}",
            )

    def run(self, max_steps: int | None) -> Path | None:
        from tqdm import tqdm

        stop = min(self.total_steps, max_steps) if max_steps else self.total_steps
        checkpoints = self.checkpoint_steps() | {stop}
        last_checkpoint = None
        self._start_records()
        bar = tqdm(
            total=stop, initial=self.step, desc="training", unit="step", disable=not self.accelerator.is_main_process
        )
        # The logged interval: the steps since the last metrics row (or the start).
        started, tokens_seen, losses = time.perf_counter(), 0, []
        try:
            while self.step < stop:
                lr = self.scheduler.get_last_lr()[0]  # the rate this step uses
                loss, tokens = self.train_step()
                tokens_seen += tokens
                losses.append(loss)
                rate = tokens_seen / max(time.perf_counter() - started, 1e-9)
                self.history.append({"step": self.step, "loss": loss, "lr": self.scheduler.get_last_lr()[0]})
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:.0f}")
                at_checkpoint = self.step in checkpoints
                if self.step % self.config["log_every"] and not at_checkpoint:
                    continue
                row = {
                    "step": self.step,
                    "epoch": round(self.step / self.steps_per_epoch, 4),
                    "loss": sum(losses) / len(losses),
                    "loss_steps": len(losses),
                    "lr": lr,
                    "tokens": tokens_seen,
                    "tokens_per_s": rate,
                }
                if self.step % self.config["log_every"] == 0:
                    log.info(
                        "step %d/%d loss %.4f lr %.3g tokens/s %.0f", self.step, self.total_steps, row["loss"], lr, rate
                    )
                validation = self.validate() if at_checkpoint else None
                if validation:
                    self._log_validation(validation)
                self._record({**row, **validation_fields(validation)})
                if at_checkpoint:
                    last_checkpoint = self.save_checkpoint(validation)
                    self._draw_curves()
                started, tokens_seen, losses = time.perf_counter(), 0, []
        finally:
            bar.close()
            if self.config["report_to"]:
                self.accelerator.end_training()
        return last_checkpoint

    def _log_validation(self, validation: dict) -> None:
        interval = validation["flag_accuracy_ci95"]
        log.info(
            "validation at step %d: loss %.4f; flag accuracy %s (95%% CI %s, Wilson; generated "
            "reviews, fixed intervention; flag parsed in %d of %d reviews); teacher-forced flag "
            "accuracy %s (own I and gold R given: leaks the flag, not a measure of the model)",
            self.step,
            validation["loss"],
            _share(validation["flag_accuracy"]),
            "n/a" if interval is None else f"{interval[0]:.3f}-{interval[1]:.3f}",
            validation["flag_accuracy_parsed"],
            validation["flag_accuracy_reviews"],
            _share(validation["teacher_forced_flag_accuracy"]),
        )


def check_output_dir(output_dir: Path, resume: str | None, overwrite: bool) -> None:
    """A run that neither resumes nor overwrites must not write over an earlier run's checkpoints."""
    if resume and overwrite:
        raise DataError("--resume and --overwrite contradict each other: continue the checkpoints, or delete them")
    earlier = step_dirs(output_dir) if output_dir.is_dir() else []
    if earlier and not resume and not overwrite:
        raise DataError(
            f"{display_path(output_dir)} (config key output_dir) holds checkpoints of an earlier run "
            f"({', '.join(p.name for p in earlier[:3])}{', ...' if len(earlier) > 3 else ''}); continue it "
            "with --resume latest, give a new output_dir (--set output_dir=DIR), or replace them with --overwrite"
        )


def run(args: argparse.Namespace) -> int:
    """The training run of train_lora.py: config (with `args.overrides`), data files, resume. The
    main process holds the lock of output_dir (locks.hold) for the whole run. Ctrl-C raises
    Interrupted with the advice that fits what was saved (interrupted_advice)."""
    config = load_training_config(args.config, args.overrides, {key: f"--set {key}" for key in args.overrides})
    if args.push_to_hub:
        hub.check_push(args.push_to_hub)  # a missing token stops now, not after the training
    output_dir = work_path(config["output_dir"])
    try:
        check_writable_dir(output_dir, "config key output_dir; --set output_dir=DIR")
        check_output_dir(output_dir, args.resume, args.overwrite)  # every process: all stop alike
        check_trackers(config["report_to"])
        if os.environ.get("RANK", "0") != "0":  # accelerate's other processes: the main one holds the lock
            return _run(args, config, main_process=False)
        with locks.hold(output_dir, "the training output_dir", locks.WAIT_OR_ELSEWHERE):
            check_output_dir(output_dir, args.resume, args.overwrite)  # again, now that no other run can write there
            return _run(args, config, main_process=True)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_advice(output_dir)) from None


def interrupted_advice(output_dir: Path) -> str:
    """What to do after Ctrl-C: continue from the last complete checkpoint, or, with none, start again."""
    try:
        latest = latest_checkpoint(output_dir)
    except DataError:
        return f"nothing was saved (no checkpoint in {display_path(output_dir)}); rerun without --resume to start again"
    return f"rerun with --resume latest to continue from the last checkpoint ({display_path(latest)})"


def _run(args: argparse.Namespace, config: dict, main_process: bool) -> int:
    spt_model.check_model_name(config["base_model"], "config key base_model")
    export_dir = data_path(config["export_dir"])
    train_file = Path(args.train_file) if args.train_file else export_dir / "train.jsonl"
    check_no_file_in_the_way(train_file.parent, "--train_file" if args.train_file else "export_dir")
    if not train_file.is_file():
        advice = (
            "--train_file names no file"
            if args.train_file
            else "run scripts/export_training_data.py first, or pass --train_file"
        )
        raise DataError(f"{display_path(train_file)}: no training data; {advice}")
    validation_file = Path(args.validation_file) if args.validation_file else export_dir / "validation.jsonl"
    if args.validation_file and not validation_file.is_file():
        raise DataError(f"{display_path(validation_file)}: file not found (--validation_file)")
    if not args.validation_file and not validation_file.exists():
        validation_file = None
    check_data_files(export_dir, train_file, validation_file, default_train=not args.train_file)
    with open(train_file, "rb") as handle:
        if not any(line.strip() for line in handle):
            raise DataError(f"{display_path(train_file)}: the training file is empty (no samples)")
    resume_dir = None
    if args.resume:
        resume_dir = (
            latest_checkpoint(work_path(config["output_dir"])) if args.resume == "latest" else Path(args.resume)
        )
        if not (resume_dir / STATE_FILE).exists():
            raise DataError(f"{display_path(resume_dir)}: not a checkpoint (no {STATE_FILE})")
    if args.max_steps is not None and args.max_steps < 1:
        raise DataError("--max-steps must be at least 1")
    if main_process:  # every input checked: only now are earlier checkpoints deleted (--overwrite)
        output_dir = work_path(config["output_dir"])
        if args.overwrite:
            remove_checkpoints(output_dir)
        remove_partials(output_dir)
    trainer = Trainer(config, train_file, validation_file, resume_dir)
    last = trainer.run(args.max_steps)
    if last:
        log.info("last checkpoint: %s", display_path(last))
    if args.push_to_hub and main_process:
        checkpoint = last or latest_checkpoint(work_path(config["output_dir"]))
        url = hub.push(checkpoint_plan(checkpoint, args.push_to_hub), f"SPT adapter, {checkpoint.name}")
        log.info("uploaded %s to %s", display_path(checkpoint), url)
    return 0
