"""Tests for lyrics with line times: corpus-truth, metadata and none paths, WER, and Whisper from disk.

The Whisper test builds a tiny *randomly initialised* WhisperForConditionalGeneration with a
byte-level tokenizer carrying Whisper's special and timestamp tokens, saves it with
save_pretrained, and runs the real pipeline code path on it. Its text is meaningless; the
test checks structure (columns, sources, ordered times inside the song), not content.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.config import build, validate
from musicot.data.table import LINE_COLUMNS, TRACK_COLUMNS, WORD_COLUMNS, frame
from musicot.prep import lyrics
from musicot.prep.vad import torch_threads

SR = 16000
STEM_S = 12.0
TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|> in 0.02 s steps, as in every Whisper checkpoint


def _cfg(**overrides) -> lyrics.AsrConfig:
    return build(lyrics.AsrConfig, {**validate({})["prep"]["asr"], **overrides})


def _corpus(root: Path, with_stems: tuple[str, ...] = ()) -> Path:
    """'timed' has timed lyric lines, 'untimed' only tracks.lyrics, 'instr' nothing."""
    base = {c: "" for c, t in TRACK_COLUMNS.items() if t == "string"}
    numbers = {"sample_rate": SR, "channels": 2, "tempo_bpm": float("nan"), "gain_db": 0.0, "duration_s": STEM_S}
    songs = {"timed": "hello world\ngood night moon", "untimed": "one line only\n\nand another", "instr": ""}
    tracks = [
        {**base, **numbers, "song_id": s, "split": "train", "lyrics": text, "lyrics_timed": s == "timed"}
        for s, text in songs.items()
    ]
    root.mkdir(parents=True, exist_ok=True)
    frame(tracks, TRACK_COLUMNS).to_parquet(root / "tracks.parquet")
    timed = [("hello world", 1.0, 2.5), ("good night moon", 4.0, 6.0)]
    lines = [{"song_id": "timed", "line": i, "text": t, "start": a, "end": b} for i, (t, a, b) in enumerate(timed)]
    frame(lines, LINE_COLUMNS).to_parquet(root / "lyric_lines.parquet")
    frame([], WORD_COLUMNS).to_parquet(root / "lyric_words.parquet")
    noise = np.random.default_rng(0).normal(0, 0.1, (int(STEM_S * SR), 2))
    for song_id in with_stems:
        (root / "stems" / song_id).mkdir(parents=True)
        sf.write(str(root / "stems" / song_id / "vocals.flac"), noise, SR, subtype="PCM_16")
    return root / "tracks.parquet"


def test_config_matches_schema() -> None:
    cfg = _cfg()
    assert cfg.checkpoint is None and cfg.prefer_truth


def test_corpus_and_none_paths(tmp_path: Path) -> None:
    table, quality, rejected = lyrics.run(_cfg(), _corpus(tmp_path), stems_dir=None)
    assert list(table.columns) == list(lyrics.LYRICS_COLUMNS) and not rejected
    by_song = {s: g.reset_index(drop=True) for s, g in table.groupby("song_id")}
    timed = by_song["timed"]
    assert timed["source"].tolist() == ["truth", "truth"]
    assert timed[["text", "start", "end"]].values.tolist() == [["hello world", 1.0, 2.5], ["good night moon", 4.0, 6.0]]
    untimed = by_song["untimed"]
    assert untimed["text"].tolist() == ["one line only", "and another"] and untimed["line"].tolist() == [0, 1]
    assert (untimed["source"] == "metadata").all() and untimed["start"].isna().all()
    instr = by_song["instr"]
    assert len(instr) == 1 and instr.loc[0, "source"] == "none" and instr.loc[0, "text"] == ""
    q = {r["metric"]: r for r in quality}
    assert q["asr_ran"]["value"] == 0 and q["asr_ran"]["note"] == "no ASR checkpoint: corpus lyrics used"
    assert [q[f"songs_{s}"]["value"] for s in lyrics.SOURCES] == [1, 1, 0, 1]


def test_wer_exact() -> None:
    assert lyrics.wer("the cat sat", "the cat sat") == 0.0
    assert lyrics.wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)  # 1 sub + 1 del
    assert lyrics.wer("a b", "a x b") == 0.5  # 1 insertion
    assert lyrics.wer("a b", "") == 1.0
    assert lyrics.wer("Hello, World! Don't", "hello world don't") == 0.0  # case and punctuation ignored
    assert math.isnan(lyrics.wer("", "anything"))
    assert lyrics.align(["a", "b", "c"], ["a", "c"]) == (1, [(0, 0), (1, None), (2, 1)])  # unique optimum
    assert lyrics.align(["a", "c"], ["a", "b", "c"]) == (1, [(0, 0), (None, 1), (1, 2)])
    assert lyrics.align(["a", "b"], ["x", "b"]) == (1, [(0, 0), (1, 1)])


def test_line_start_errors_exact() -> None:
    truth = pd.DataFrame({"text": ["hello world", "good night", "gone"], "start": [1.0, 3.0, 5.0]})
    asr = pd.DataFrame({"text": ["hello world good", "night moon"], "start": [1.25, 3.5]})
    # Only "hello" starts a line on both sides; "good" starts a truth line inside an ASR line.
    assert lyrics.line_start_errors(truth, asr) == [0.25]
    asr = pd.DataFrame({"text": ["hello world", "good night moon"], "start": [1.25, 2.5]})
    assert lyrics.line_start_errors(truth, asr) == [0.25, 0.5]


def test_chunks_to_lines_sanitises() -> None:
    chunks = [
        {"timestamp": (5.0, 7.0), "text": " late <|en|>"},
        {"timestamp": (1.0, 2.0), "text": " early"},
        {"timestamp": (2.0, 3.0), "text": "<|nospeech|>"},  # nothing left: dropped
        {"timestamp": (11.0, None), "text": " cut off"},  # unfinished: ends with the song
        {"timestamp": (30.0, 31.0), "text": " beyond"},  # past the song: clipped
    ]
    rows = lyrics.chunks_to_lines("s", chunks, 12.0)
    assert [(r["text"], r["start"], r["end"]) for r in rows] == [
        ("early", 1.0, 2.0),
        ("late", 5.0, 7.0),
        ("cut off", 11.0, 12.0),
        ("beyond", 12.0, 12.0),
    ]
    assert [r["line"] for r in rows] == [0, 1, 2, 3] and {r["source"] for r in rows} == {"asr"}
    [empty] = lyrics.chunks_to_lines("s", [], 12.0)
    assert empty["source"] == "asr" and empty["text"] == "" and math.isnan(empty["start"])


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer Whisper saved like a real checkpoint (model, feature extractor, tokenizer)."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    folder = tmp_path_factory.mktemp("tiny_whisper")
    # Byte-level BPE with no merges: every text is encodable. Whisper finds languages at
    # <|startoftranscript|> + 1 + index in LANGUAGES, and timestamps right after <|notimestamps|>.
    byte_vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    tokenizer = WhisperTokenizer(vocab=byte_vocab, merges=[], pad_token="<|endoftext|>")
    languages = [f"<|{code}|>" for code in LANGUAGES]
    controls = [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    tokenizer.add_tokens(["<|endoftext|>", "<|startoftranscript|>", *languages, *controls], special_tokens=True)
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    tid = tokenizer.convert_tokens_to_ids
    eot, sot = tid("<|endoftext|>"), tid("<|startoftranscript|>")
    assert tid("<|notimestamps|>") + TIMESTAMPS + 1 == len(tokenizer)  # timestamps are the last ids

    config = WhisperConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_target_positions=64,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    # What Whisper's generate() reads for language/task prompts and timestamp decoding.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=config.max_target_positions,
        no_timestamps_token_id=tid("<|notimestamps|>"),
        prev_sot_token_id=tid("<|startofprev|>"),
        is_multilingual=True,
        lang_to_id={lang: tid(lang) for lang in languages},
        task_to_id={"transcribe": tid("<|transcribe|>"), "translate": tid("<|translate|>")},
        max_initial_timestamp_index=50,
        num_beams=1,  # the pipeline otherwise defaults to 5 beams: correct but 5x slower for this test
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    return folder


def _check_asr_rows(rows: pd.DataFrame) -> None:
    assert len(rows) >= 1 and (rows["source"] == "asr").all()
    assert rows["line"].tolist() == list(range(len(rows)))
    timed = rows.dropna(subset=["start"])
    assert timed["start"].is_monotonic_increasing
    assert ((timed["end"] >= timed["start"]) & (timed["start"] >= 0) & (timed["end"] <= STEM_S)).all()


def test_tiny_whisper_from_disk(tmp_path: Path, tiny_whisper: Path) -> None:
    # The raw pipeline output carries model-predicted (start, end) times: the timestamp path really ran.
    transcribe = lyrics.load_whisper(_cfg(checkpoint=str(tiny_whisper), chunk_s=5.0, batch_size=2))
    with torch_threads(1):  # as run() does: tiny ops, and a busy 2-core machine makes 2 threads crawl
        chunks = transcribe(np.random.default_rng(1).normal(0, 0.1, int(STEM_S * SR)).astype(np.float32), SR)
    assert chunks and all(isinstance(c["timestamp"][0], float) for c in chunks)

    tracks = _corpus(tmp_path, with_stems=("timed", "instr"))  # 'untimed' has no stem
    stems = tmp_path / "stems"
    # Chunks of 5 s over a 12 s stem, two per forward pass: chunking, batching and merging all run.
    asr = {"checkpoint": str(tiny_whisper), "chunk_s": 5.0, "batch_size": 2}
    table, quality, rejected = lyrics.run(_cfg(**asr), tracks, stems)
    assert set(table.loc[table["source"] == "asr", "song_id"]) == {"instr"}  # the others keep corpus lyrics
    _check_asr_rows(table[table["song_id"] == "instr"])
    assert not rejected
    q = {r["metric"]: r for r in quality}
    assert q["asr_ran"]["value"] == 1 and q["wer"]["n"] == 0  # ASR only ran where there is no truth

    # Without prefer_truth every song is transcribed (CLI this time); the stemless one is rejected.
    out = tmp_path / "out"
    args = ["--tracks", str(tracks), "--stems", str(stems), "--out", str(out / "l.parquet")]
    args += ["--quality", str(out / "q.csv"), "--rejected", str(out / "r.tsv")]
    config = json.dumps({"prep": {"asr": {**asr, "prefer_truth": False}}})
    assert lyrics.main(["--config", config, *args]) == 0
    table = pd.read_parquet(out / "l.parquet")
    assert set(table["song_id"]) == {"timed", "instr"}
    for _, rows in table.groupby("song_id"):
        _check_asr_rows(rows)
    rejected = pd.read_csv(out / "r.tsv", sep="\t")
    assert rejected[["song_id", "step", "reason"]].values.tolist() == [["untimed", "lyrics", "missing_audio"]]
    q = pd.read_csv(out / "q.csv").set_index("metric")
    assert q.loc["wer", "n"] == 1 and q.loc["wer", "value"] >= 0  # scored on 'timed'; random text, so no bound
    assert q.loc["songs_asr", "value"] == 2


def test_asr_scores_against_truth(tmp_path: Path) -> None:
    """A stub 'ASR' that returns the truth lines 0.25 s late with one word wrong: exact WER and timing error."""

    def transcribe(audio: np.ndarray, sr: int) -> list[dict]:
        assert sr == SR and audio.ndim == 1 and len(audio) == int(STEM_S * SR)  # mono, at the model's rate
        return [
            {"timestamp": (1.25, 2.5), "text": " Hello, world!"},
            {"timestamp": (4.25, None), "text": " good night noon"},
        ]

    transcribe.sampling_rate = SR  # type: ignore[attr-defined]
    tracks = _corpus(tmp_path, with_stems=("timed",))
    cfg = _cfg(checkpoint="stub", prefer_truth=False)
    table, quality, rejected = lyrics.run(cfg, tracks, tmp_path / "stems", transcriber=transcribe)
    timed = table[table["song_id"] == "timed"]
    assert timed[["text", "start", "end"]].values.tolist() == [
        ["Hello, world!", 1.25, 2.5],
        ["good night noon", 4.25, 12],
    ]
    assert sorted(r["song_id"] for r in rejected) == ["instr", "untimed"]  # no stems for them
    q = {r["metric"]: r for r in quality}
    assert q["wer"]["value"] == pytest.approx(1 / 5) and q["wer"]["n"] == 1
    assert q["line_start_abs_err_median_s"]["value"] == pytest.approx(0.25)
    assert q["line_start_abs_err_median_s"]["n"] == 2
