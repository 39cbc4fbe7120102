"""`musicot analyze SONG`: a tiny random CLAP and a small trained RVQ on a few generated seconds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from musicot.analysis.analyzability import ANCHORS, anchor_similarity
from musicot.clap import model as M
from musicot.cli import main
from musicot.config import validate
from musicot.rvq.model import RvqConfig, decode, load_rvq, save_rvq, train_rvq

SR = 16000
WINDOW_S, HOP_S = 2.0, 1.0
LEVELS, CODES = 2, 4


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("analyze")
    torch.manual_seed(0)
    clap = M.build(M.preset_spec("tiny", window_s=WINDOW_S))
    # `train` stores its clap section next to the spec; analyze must window with it
    M.save(clap, root / "clap", extra={"clap": {"window_s": WINDOW_S, "hop_s": HOP_S}})
    cfg = RvqConfig.from_config(
        validate(
            {
                "rvq": dict(
                    levels=LEVELS,
                    codebook_size=CODES,
                    kmeans_iters=5,
                    threshold_ema_dead_code=0,
                    steps=3,
                    batch_size=64,
                    eval_every=3,
                )
            }
        )
    )
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((128, clap.joint_dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rvq, _ = train_rvq(emb, cfg, root / "rvq_state")
    save_rvq(rvq, cfg, clap.joint_dim, root / "rvq")
    small_cfg = replace(cfg, steps=1)
    small, _ = train_rvq(emb[:, :16], small_cfg, root / "small_state")
    save_rvq(small, small_cfg, 16, root / "rvq16")
    t = np.arange(int(5.5 * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (t < 3) + 0.2 * rng.standard_normal(len(t)) * (t > 2)
    sf.write(root / "my song.wav", np.stack([wave, wave], axis=1), SR)
    return dict(root=root, clap=root / "clap", rvq=root / "rvq", rvq16=root / "rvq16", song=root / "my song.wav")


def _models(models: dict[str, Path]) -> list[str]:
    return ["--clap", str(models["clap"]), "--rvq", str(models["rvq"])]


def test_analyze_writes_thought_table_and_timeline(models, tmp_path):
    out = tmp_path / "out"
    main(["analyze", str(models["song"]), *_models(models), "--out", str(out)])
    table = pd.read_csv(out / "my song_thought.csv")
    # 5.5 s at 2 s windows, 1 s hop: starts 0..3; the last window ends at the song's end
    codes = [f"code_{level}" for level in range(LEVELS)]
    sims = [f"sim_{a}" for a in ANCHORS]
    assert list(table.columns) == ["window", "start", "end", *codes, *sims]
    np.testing.assert_allclose(table["start"], [0, 1, 2, 3])
    np.testing.assert_allclose(table["end"], [2, 3, 4, 5])
    assert table[codes].to_numpy().min() >= 0 and table[codes].to_numpy().max() < CODES
    # the similarities are those of the decoded codes with the anchor words' text embeddings
    clap = M.load(models["clap"])
    expected = anchor_similarity(decode(load_rvq(models["rvq"]), table[codes].to_numpy()), clap.embed_text(ANCHORS))
    np.testing.assert_allclose(table[sims].to_numpy(), expected, atol=1e-5)
    assert (out / "my song_timeline.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "my song_timeline.png").read_bytes().startswith(b"\x89PNG")


def test_analyze_hop_and_anchors_from_the_command_line(models, tmp_path):
    main(
        [
            "analyze",
            str(models["song"]),
            *_models(models),
            "--out",
            str(tmp_path),
            "--hop-s",
            "3",
            "--anchors",
            "drums",
            "piano",
        ]
    )
    table = pd.read_csv(tmp_path / "my song_thought.csv")
    np.testing.assert_allclose(table["start"], [0, 3])
    assert [c for c in table.columns if c.startswith("sim_")] == ["sim_drums", "sim_piano"]


def test_analyze_errors_name_the_problem(models, tmp_path):
    base = ["analyze", str(models["song"]), "--clap", str(models["clap"]), "--out", str(tmp_path)]
    with pytest.raises(SystemExit, match="quantizes 16-d embeddings but the CLAP model"):
        main([*base, "--rvq", str(models["rvq16"])])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(SystemExit, match=r"cannot read .*broken\.wav as audio"):
        main(["analyze", str(broken), *_models(models), "--out", str(tmp_path)])
