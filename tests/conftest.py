"""Shared fixtures: small configs and one rendered mini corpus reused across tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicot.config import load_config, validate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def default_config() -> dict:
    return load_config(REPO / "config.yaml")


def tiny_config(**synth) -> dict:
    """A validated config for a few short songs at a low sample rate."""
    raw = {
        "seed": 7,
        "corpus": {
            "sample_rate": 22050,
            "split_fractions": {"valid": 0.25, "reference": 0.25},
            "synth": {"n_songs": 4, "shards": 2, "duration_s": [9, 11], "instrumental_fraction": 0.0, **synth},
        },
    }
    return validate(raw)


@pytest.fixture(scope="session")
def mini_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """Shard 0 of the tiny config, rendered once for all synth tests."""
    from musicot.data.synth import render_shard

    config = tiny_config()
    out = tmp_path_factory.mktemp("corpus") / "shard0"
    render_shard(config, 0, out)
    return config, out
