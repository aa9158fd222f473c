"""Tiny offline stand-ins for real chat models (Llama 3, Qwen 3, Gemma 3), built in seconds: the
model of `make demo`'s training run and of the tests.

The same program as `spt tiny-model`; its code: spt/training/tiny_model.py.
"""

import sys

from spt.training.tiny_model import main

if __name__ == "__main__":
    sys.exit(main())
