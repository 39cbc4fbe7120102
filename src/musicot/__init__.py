"""musicot: MusiCoT (Chain-of-Musical-Thought prompting) reproduced as one Snakemake workflow."""

import os

# Offline by default: a hub lookup offline retries for minutes and then yields an empty
# tokenizer. A user who wants the network sets these variables to 0 explicitly.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
