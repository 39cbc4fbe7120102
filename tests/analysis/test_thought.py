"""Thought analyzability on a constructed corpus where every r is known exactly, and the timeline helpers.

The RVQ has hand-set codebooks: level 1 holds four unit vectors whose cosine with the "vocals"
anchor (e0) is 0.2, 0.4, 0.6, 0.8; level 2 is all zeros. So a window's de-quantized thought has
vocals similarity COS[code] exactly. The truth vocals volume is 0.1 * COS[code] (r = +1), the
separated vocals stem is 0.3 - 0.1 * COS[code] (r = -1), and the raw embeddings have similarity
-COS[code] (r = -1 against the truth): each row set can only come out right from its own input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from musicot.analysis.thought import OUTPUT_COLUMNS, PAPER_R, AnalysisConfig, run, window_codes
from musicot.analysis.timeline import cell_edges, pick_song, plot_timeline, scale_rows
from musicot.config import validate
from musicot.rvq.model import RvqConfig, build_rvq, save_rvq

DIM = 8
SR = 8000
WINDOW_S = 2.0
COS = np.array([0.2, 0.4, 0.6, 0.8])
# song -> (split, level-1 code of each of its 4 windows, truth vocals volume scale)
SONGS = {
    "a": ("valid", [0, 1, 2, 3], 0.1),
    "b": ("reference", [3, 1, 0, 2], 0.1),
    "q": ("valid", [0, 1, 2, 3], 0.001),  # quiet vocals in the truth: excluded there
    "t": ("train", [0, 0, 1, 1], 0.1),  # training song: never analysed
}


def _unit(cos: np.ndarray, axis: int) -> np.ndarray:
    """Unit vectors with cosine `cos` to e0 and the rest along e_axis."""
    v = np.zeros((len(cos), DIM), np.float32)
    v[:, 0], v[:, axis] = cos, np.sqrt(1 - cos**2)
    return v


def _rvq(out: Path) -> None:
    cfg = RvqConfig.from_config(
        validate(
            {
                "rvq": dict(
                    levels=2,
                    codebook_size=4,
                    kmeans_iters=1,
                    threshold_ema_dead_code=0,
                    steps=1,
                    batch_size=4,
                    eval_every=1,
                )
            }
        )
    )
    model = build_rvq(cfg, DIM)
    state = model.state_dict()
    state["layers.0._codebook.embed"] = torch.from_numpy(_unit(COS, 5))[None]
    state["layers.1._codebook.embed"] = torch.zeros(1, 4, DIM)
    for level in (0, 1):
        state[f"layers.{level}._codebook.initted"] = torch.tensor(True)
    model.load_state_dict(state)
    save_rvq(model, cfg, DIM, out)


def _square(rms: float, seconds: float) -> np.ndarray:
    """+-rms alternating samples: RMS exactly `rms` (up to 16-bit rounding)."""
    n = int(seconds * SR)
    return (rms * np.where(np.arange(n) % 2, 1.0, -1.0)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("thought")
    emb_dir, rvq_dir, stems = root / "embeddings", root / "rvq", root / "stems"
    emb_dir.mkdir()
    windows, raw, codes, volume = [], [], [], []
    for song, (split, song_codes, scale) in SONGS.items():
        for w, code in enumerate(song_codes):
            start = WINDOW_S * w
            windows.append(dict(song_id=song, window=w, start=start, end=start + WINDOW_S, split=split))
            codes += [dict(song_id=song, window=w, level=0, code=code), dict(song_id=song, window=w, level=1, code=1)]
            for frame in range(4):  # 0.5 s frames, all equal inside a window
                t0 = start + 0.5 * frame
                rms = scale * COS[code]
                volume.append(dict(song_id=song, stem="vocals", frame=4 * w + frame, start=t0, end=t0 + 0.5, rms=rms))
        raw.append(_unit(-COS[song_codes], 6))
        sep = np.concatenate([_square(0.3 - 0.1 * COS[c], WINDOW_S) for c in song_codes])
        (stems / song).mkdir(parents=True)
        sf.write(stems / song / "vocals.flac", sep, SR, subtype="PCM_16")
    pd.DataFrame(windows).to_parquet(emb_dir / "windows.parquet")
    np.save(emb_dir / "windows.npy", np.concatenate(raw))
    # a caption row named like an anchor comes first: only kind == "anchor" rows may be used
    texts = pd.DataFrame(
        dict(text=["vocals", *PAPER_R, "rock"], kind=["caption", *["anchor"] * len(PAPER_R), "tag:genre"])
    )
    text_emb = np.zeros((len(texts), DIM), np.float32)
    text_emb[0, 7] = 1.0
    text_emb[1:6, :5] = np.eye(5)
    text_emb[6, 6] = 1.0
    texts.to_parquet(emb_dir / "text.parquet")
    np.save(emb_dir / "text.npy", text_emb)
    _rvq(rvq_dir)
    pd.DataFrame(codes).to_parquet(rvq_dir / "codes.parquet")
    corpus_dir = root / "corpus"
    corpus_dir.mkdir()
    pd.DataFrame(dict(song_id=list(SONGS))).to_parquet(corpus_dir / "tracks.parquet")
    pd.DataFrame(volume).to_parquet(corpus_dir / "stem_volume.parquet")
    return dict(tracks=corpus_dir / "tracks.parquet", embeddings=emb_dir, rvq=rvq_dir, stems=stems)


def _cfg(**overrides) -> AnalysisConfig:
    return AnalysisConfig.from_config(validate({"analysis": overrides}))


def test_each_row_set_has_its_known_r(corpus):
    rows, _ = run(_cfg(), corpus["tracks"], corpus["embeddings"], corpus["rvq"], corpus["stems"])
    assert list(rows.columns) == OUTPUT_COLUMNS
    vocals = rows[rows["anchor"] == "vocals"].set_index(["embedding", "stems"])
    assert vocals.loc[("quantized", "truth"), "r_pooled"] == pytest.approx(1.0)
    assert vocals.loc[("quantized", "truth"), "r_per_song_mean"] == pytest.approx(1.0)
    assert vocals.loc[("quantized", "separated"), "r_pooled"] == pytest.approx(-1.0, abs=1e-6)
    assert vocals.loc[("raw", "truth"), "r_pooled"] == pytest.approx(-1.0)
    # the quiet song drops out of the truth rows only; the training song is never analysed
    truth = vocals.loc[("quantized", "truth")]
    assert (truth["n_windows"], truth["n_songs"], truth["n_excluded"]) == (8, 2, 1)
    assert vocals.loc[("quantized", "separated"), "n_songs"] == 3
    assert rows.groupby("anchor")["paper_r"].agg(set).to_dict() == {a: {r} for a, r in PAPER_R.items()}
    assert rows[rows["anchor"] == "bass"]["r_pooled"].isna().all()  # no bass volume anywhere


def test_windows_table_holds_codes_similarities_and_volumes(corpus):
    _, table = run(_cfg(), corpus["tracks"], corpus["embeddings"], corpus["rvq"], corpus["stems"])
    assert len(table) == 12 and set(table["song_id"]) == {"a", "b", "q"}
    a = table[table["song_id"] == "a"].sort_values("window")
    np.testing.assert_array_equal(a["code_0"], SONGS["a"][1])
    np.testing.assert_array_equal(a["code_1"], 1)
    np.testing.assert_allclose(a["sim_vocals"], COS, atol=1e-6)
    np.testing.assert_allclose(a["sim_raw_vocals"], -COS, atol=1e-6)
    np.testing.assert_allclose(a["volume_truth_vocals"], 0.1 * COS, atol=1e-9)
    np.testing.assert_allclose(a["volume_separated_vocals"], 0.3 - 0.1 * COS, atol=1e-4)
    assert a["volume_truth_bass"].isna().all()


def test_splits_and_anchors_follow_the_config(corpus):
    rows, table = run(
        _cfg(splits=["train"], anchors=["vocals"]),
        corpus["tracks"],
        corpus["embeddings"],
        corpus["rvq"],
        corpus["stems"],
    )
    assert set(table["song_id"]) == {"t"}
    assert list(rows["anchor"].unique()) == ["vocals"]
    assert "sim_bass" not in table


def test_codes_missing_for_a_window_is_an_error():
    codes = pd.DataFrame(dict(song_id=["a", "a"], window=[0, 0], level=[0, 1], code=[2, 3]))
    windows = pd.DataFrame(dict(song_id=["a", "a"], window=[0, 1]))
    with pytest.raises(ValueError, match="lacks windows"):
        window_codes(codes, windows)
    np.testing.assert_array_equal(window_codes(codes, windows.iloc[:1]), [[2, 3]])


def test_cell_edges_centre_each_overlapping_window():
    # 10 s windows at a 5 s hop: centres 5, 10, 15 -> cells 2.5..7.5..12.5..17.5
    np.testing.assert_allclose(cell_edges(np.array([0.0, 5, 10]), np.array([10.0, 15, 20])), [2.5, 7.5, 12.5, 17.5])
    np.testing.assert_allclose(cell_edges(np.array([0.0]), np.array([3.0])), [0.0, 3.0])


def test_scale_rows_per_row_range():
    out = scale_rows(np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0], [np.nan, np.nan, np.nan]]))
    np.testing.assert_allclose(out[:2], [[0, 1, 0.5], [0, 0, 0]])
    assert np.isnan(out[2]).all()


def test_plot_and_pick_song(corpus, tmp_path):
    _, table = run(_cfg(), corpus["tracks"], corpus["embeddings"], corpus["rvq"], corpus["stems"])
    assert pick_song(table) == "a"
    with pytest.raises(ValueError, match="not among the analysed songs"):
        pick_song(table, "t")
    paths = [tmp_path / "f.pdf", tmp_path / "f.png"]
    fig = plot_timeline(table[table["song_id"] == "b"], list(PAPER_R), paths, title="b")
    assert len(fig.axes) == 4  # thought and volume panels, each with its colour bar
    assert paths[0].read_bytes().startswith(b"%PDF") and paths[1].read_bytes().startswith(b"\x89PNG")


def test_no_held_out_windows_gives_nan_rows_not_a_crash(corpus, tmp_path):
    emb = tmp_path / "embeddings"
    shutil.copytree(corpus["embeddings"], emb)
    windows = pd.read_parquet(emb / "windows.parquet")
    windows.assign(split="train").to_parquet(emb / "windows.parquet")
    rows, table = run(_cfg(), corpus["tracks"], emb, corpus["rvq"], corpus["stems"])
    assert len(rows) == 3 * len(PAPER_R) and rows["r_pooled"].isna().all() and (rows["n_windows"] == 0).all()
    assert len(table) == 0 and "volume_truth_vocals" in table
    with pytest.raises(ValueError, match="no analysed windows"):
        pick_song(table)
