"""LoRA training and evaluation of the honest persona: token layouts, the model with its
split-personality token, the training loop, checkpoints and evaluation runs."""
