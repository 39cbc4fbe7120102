"""Separation: train a micro HTDemucs, save/load it like a public checkpoint, apply, reject, score."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from demucs.apply import BagOfModels, apply_model
from demucs.htdemucs import HTDemucs
from demucs.pretrained import get_model

from musicot.audio import resample, write_flac
from musicot.config import validate
from musicot.data.table import STEMS, TRACK_COLUMNS, frame
from musicot.prep.separate import (
    MANIFEST_FILE,
    TRAINED_NAME,
    SeparationConfig,
    load_separator,
    main,
    separate_songs,
    serialize,
)
from musicot.prep.separate_score import SDR_CAP_DB, chunk_median_sdr, score_separation, sdr
from musicot.prep.separate_train import train_separator

FILE_SR = 16000  # corpus files; the micro model works at 8 kHz, so every path resamples
MODEL_SR = 8000
SONG_S = 3.0
SPLITS = {"t0": "train", "t1": "train", "t2": "train", "v0": "valid", "v1": "valid", "r0": "reference"}
SIX_STEM_ORDER = ["drums", "bass", "other", "vocals", "guitar", "piano"]  # htdemucs_6s' own order


def micro_config(**over) -> SeparationConfig:
    sep = {
        "sample_rate": MODEL_SR,
        "channels": 8,
        "depth": 2,
        "t_layers": 0,
        "segment_s": 2.0,
        "steps": 30,
        "batch_size": 4,
        "crop_s": 1.0,
        "lr": 0.01,
        "eval_every": 10,
        **over,
    }
    return SeparationConfig.from_config(validate({"prep": {"separation": sep}}))


def _synth_stems(rng: np.random.Generator, n: int, sr: int) -> dict[str, np.ndarray]:
    """Six audibly different stereo stems: sung sine, bass sine, noise hits, square, plucks, hiss."""
    t = np.arange(n) / sr
    beat = (t % 0.25) / 0.25
    f = rng.uniform(0.8, 1.2)
    mono = {
        "vocals": 0.2 * np.sin(2 * np.pi * 440 * f * t + 3 * np.sin(2 * np.pi * 5 * t)),
        "bass": 0.2 * np.sin(2 * np.pi * 70 * f * t),
        "drums": 0.3 * rng.standard_normal(n) * np.exp(-30 * beat),
        "guitar": 0.08 * np.sign(np.sin(2 * np.pi * 250 * f * t)),
        "piano": 0.2 * np.sin(2 * np.pi * 700 * f * t) * np.exp(-8 * ((t % 0.5) / 0.5)),
        "other": 0.02 * rng.standard_normal(n),
    }
    return {k: np.stack([0.6 * v, 0.5 * v], axis=1).astype(np.float32) for k, v in mono.items()}


def _track_row(song_id: str, split: str, audio_path: Path, stems_dir: Path | str) -> dict:
    row = {c: "" for c, t in TRACK_COLUMNS.items() if t == "string"}
    row.update(song_id=song_id, source="synth", split=split, audio_path=str(audio_path), stems_dir=str(stems_dir))
    row.update(sample_rate=FILE_SR, channels=2, duration_s=SONG_S, tempo_bpm=np.nan, gain_db=0.0, lyrics_timed=False)
    return row


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> pd.DataFrame:
    """Five songs with stems (v1 has a silent piano) written as FLAC, and their tracks table."""
    root = tmp_path_factory.mktemp("sep_corpus")
    rng = np.random.default_rng(0)
    rows = []
    for song_id, split in SPLITS.items():
        stems = _synth_stems(rng, int(SONG_S * FILE_SR), FILE_SR)
        if song_id == "v1":
            stems["piano"][:] = 0.0
        folder = root / song_id
        for stem, audio in stems.items():
            write_flac(folder / f"{stem}.flac", audio, FILE_SR)
        write_flac(folder / "mix.flac", sum(stems.values()), FILE_SR)
        rows.append(_track_row(song_id, split, folder / "mix.flac", folder))
    return frame(rows, TRACK_COLUMNS)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("separator")
    cfg = micro_config()
    model, metrics = train_separator(corpus, cfg, out / "model", out / "state", threads=1, seed=5)
    return cfg, out / "model", model, metrics


def _flac_like(path: Path) -> tuple[int, int]:
    info = sf.info(str(path))
    return info.frames, info.samplerate


def test_training_lowers_the_loss_and_writes_demucs_files(trained):
    cfg, folder, _, metrics = trained
    assert metrics["loss_last"] < 0.8 * metrics["loss_first"]
    assert metrics["valid_loss_last"] < metrics["valid_loss_first"]
    assert set(metrics["valid_crop_sdr_last"]) == set(STEMS)
    assert [s for s, _ in metrics["history"]["eval"]] == [0, 10, 20, 30]
    assert metrics["train_songs"] == 3 and metrics["seed"] == 5 and metrics["params"] > 0
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json", f"{TRAINED_NAME}.th"]
    assert json.loads((folder / "config.json").read_text())["config"]["steps"] == cfg.steps


def test_saved_model_loads_through_get_model_with_identical_outputs(trained):
    _, folder, model, _ = trained
    loaded = get_model(TRAINED_NAME, repo=folder)
    assert loaded.sources == list(STEMS) and loaded.samplerate == MODEL_SR
    x = torch.randn(1, 2, int(2.5 * MODEL_SR), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = apply_model(model, x, shifts=0, overlap=0.25, split=True)
        got = apply_model(loaded, x, shifts=0, overlap=0.25, split=True)
    assert torch.equal(expected, got)
    assert isinstance(load_separator(folder), HTDemucs)


def test_resume_of_a_finished_run_trains_no_further(trained, corpus):
    cfg, folder, model, metrics = trained
    again, metrics2 = train_separator(corpus, cfg, folder.parent / "model2", folder.parent / "state", seed=5)
    assert metrics2["history"]["train"] == metrics["history"]["train"]
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def _random_htdemucs(sources: list[str]) -> HTDemucs:
    torch.manual_seed(1)
    return HTDemucs(sources=sources, samplerate=MODEL_SR, segment=2.0, channels=8, depth=2, t_layers=0)


def _save_with_checksum(package: dict, folder: Path, sig: str) -> Path:
    """What demucs' save_with_checksum does: <sig>-<sha256[:8]>.th."""
    buf = io.BytesIO()
    torch.save(package, buf)
    path = folder / f"{sig}-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.th"
    path.write_bytes(buf.getvalue())
    return path


def test_public_style_checkpoint_folders_load_offline(tmp_path):
    model = _random_htdemucs(SIX_STEM_ORDER)
    x = torch.randn(1, 2, 3 * MODEL_SR, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = apply_model(model.eval(), x, shifts=0, split=True)

    # A folder with a signature file and a bag yaml naming it.
    folder = tmp_path / "public"
    folder.mkdir()
    _save_with_checksum(serialize(model, {}), folder, "abcd1234")
    (folder / "mybag.yaml").write_text("models: ['abcd1234']\n")
    for name in ("abcd1234", "mybag"):
        loaded = load_separator(micro_config(checkpoint=str(folder), model=name))
        with torch.no_grad():
            assert torch.allclose(apply_model(loaded, x, shifts=0, split=True), expected, atol=1e-6), name
    assert isinstance(loaded, BagOfModels)

    # Only the public htdemucs_6s weights file: the bag yaml comes from the demucs package.
    bare = tmp_path / "bare"
    bare.mkdir()
    _save_with_checksum(serialize(model, {}), bare, "5c90dfd2")
    loaded = load_separator(micro_config(checkpoint=str(bare), model="htdemucs_6s"))
    assert isinstance(loaded, BagOfModels) and loaded.sources == SIX_STEM_ORDER
    with pytest.raises(Exception, match="neither a model nor a bag"):
        load_separator(micro_config(checkpoint=str(bare), model="nosuchmodel"))


def test_apply_writes_six_stems_and_rejects_bad_songs(trained, corpus, tmp_path):
    cfg, _, model, _ = trained
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio at all")
    short = tmp_path / "short.flac"
    write_flac(short, np.zeros((FILE_SR // 2, 2), dtype=np.float32), FILE_SR)
    extra = [_track_row("bad", "train", bad, ""), _track_row("short", "train", short, "")]
    tracks = pd.concat([corpus, frame(extra, TRACK_COLUMNS)], ignore_index=True)
    out = tmp_path / "stems"
    rejected = separate_songs(model, tracks, out, cfg, threads=1, description="micro")
    assert {(r["song_id"], r["reason"]) for r in rejected} == {("bad", "unreadable"), ("short", "too_short")}
    assert all(r["step"] == "separation" for r in rejected)
    n = resample(np.zeros((int(SONG_S * FILE_SR), 2), np.float32), FILE_SR, MODEL_SR).shape[0]
    for song_id in SPLITS:
        assert sorted(p.stem for p in (out / song_id).iterdir()) == sorted(STEMS)
        assert all(_flac_like(out / song_id / f"{s}.flac") == (n, MODEL_SR) for s in STEMS)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["songs"] == len(SPLITS) and manifest["missing_stems"] == [] and manifest["model"] == "micro"


def test_four_stem_model_writes_what_it_has(corpus, tmp_path):
    model = _random_htdemucs(["drums", "bass", "other", "vocals"]).eval()
    out = tmp_path / "stems4"
    assert separate_songs(model, corpus.head(1), out, micro_config()) == []
    assert sorted(p.stem for p in (out / "t0").iterdir()) == ["bass", "drums", "other", "vocals"]
    assert json.loads((out / MANIFEST_FILE).read_text())["missing_stems"] == ["guitar", "piano"]


def test_sdr_exact_values():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((1000, 2))
    assert sdr(s, s) == SDR_CAP_DB
    assert sdr(s, np.zeros_like(s)) == 0.0
    assert sdr(s, s / 2) == pytest.approx(10 * np.log10(4))
    assert sdr(s, -s) == pytest.approx(10 * np.log10(1 / 4))
    loud, quiet = np.ones((100, 2)), np.zeros((100, 2))
    # Second chunk has silent truth and is left out of the median.
    assert chunk_median_sdr(np.concatenate([loud, quiet]), np.concatenate([loud / 2, loud]), 100) == pytest.approx(
        10 * np.log10(4)
    )


def test_score_truth_silence_and_skipped_stems(corpus, tmp_path):
    perfect, silent = tmp_path / "perfect", tmp_path / "silent"
    for song in corpus.itertuples():
        shutil.copytree(song.stems_dir, perfect / song.song_id)
        for stem in STEMS:
            write_flac(silent / song.song_id / f"{stem}.flac", np.zeros((int(SONG_S * FILE_SR), 2)), FILE_SR)
    quality, per_song = score_separation(perfect, corpus, "test")
    values = {q["metric"]: (q["value"], q["n"]) for q in quality}
    assert set(per_song["song_id"]) == {"v0", "v1", "r0"}  # the splits the separator never trains on
    assert values["sdr_vocals"] == (SDR_CAP_DB, 2) and values["sdr_frames_vocals"] == (SDR_CAP_DB, 2)
    assert values["sdr_piano"] == (SDR_CAP_DB, 1)  # v1's piano is silent in the truth
    assert values["reference_sdr_piano"] == (SDR_CAP_DB, 1) and values["reference_sdr_mean"] == (SDR_CAP_DB, 1)
    notes = {q["metric"]: q["note"] for q in quality}
    assert notes["sdr_bass"] == "valid split, test" and notes["reference_sdr_bass"] == "reference split, test"
    assert all(q["step"] == "separation" for q in quality)
    quality, _ = score_separation(silent, corpus)
    assert all(q["value"] == 0.0 for q in quality)


def test_cli_apply_and_score(trained, corpus, tmp_path):
    _, folder, _, _ = trained
    tracks = tmp_path / "tracks.parquet"
    corpus.to_parquet(tracks)
    cfg = json.dumps({"seed": 5, "prep": {"separation": {"sample_rate": MODEL_SR, "channels": 8}}})
    stems, rejected = tmp_path / "stems", tmp_path / "rejected.tsv"
    apply = {"--model": folder, "--tracks": tracks, "--out": stems, "--rejected": rejected, "--threads": 1}
    main(["apply", "--config", cfg, *(str(x) for kv in apply.items() for x in kv)])
    assert pd.read_csv(rejected, sep="\t").empty
    quality, per_song = tmp_path / "q.csv", tmp_path / "sdr.csv"
    score = {"--stems": stems, "--tracks": tracks, "--quality": quality, "--per-song": per_song}
    main(["score", "--config", cfg, *(str(x) for kv in score.items() for x in kv)])
    q = pd.read_csv(quality)
    assert set(q["metric"]) >= {f"sdr_{s}" for s in STEMS} and np.isfinite(q["value"]).all()
    assert q["note"].str.contains("trained tiny HTDemucs").all()
    assert len(pd.read_csv(per_song)) == 17  # 3 valid/reference songs x 6 stems, minus v1's silent piano
