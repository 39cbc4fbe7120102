"""Ingest of real audio: every input is accepted or rejected with the right reason."""

from __future__ import annotations

import json
import re
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.config import ConfigError, validate
from musicot.data import ingest as ing
from musicot.data import track_writer
from musicot.data.checks import BLOCK_FRAMES, REASONS, Rejection, check_audio, container_shortfall
from musicot.data.ingest import IngestConfig, ingest, summary
from musicot.data.sources import Item, claim_ids, derive_song_id, parse_lrc, part_id, shift_lrc
from musicot.data.table import CorpusAudio, read_part, sha1_of_samples

SR = 44100
SECONDS = 6.0
AUDIO = CorpusAudio(sample_rate=SR, split_fractions={"valid": 0.1, "reference": 0.1}, seed=7)
UNICODE_NAME = "Café – naïve 夜.wav"
LRC = "[ar:Someone]\n[00:00.50] first line\n[00:02.00][00:04.00] twice sung\n[00:03.00] middle\n"
META = {
    "caption": "a bright test tone",
    "genre": "pop",
    "mood": "happy",
    "gender": "Female",
    "instruments": ["piano", "bass"],
    "tempo_bpm": 120,
    "key": "A minor",
    "split": "valid",
}
# file -> expected rejection reason; files not listed (and not sidecars) must be accepted
EXPECTED_REJECTS = {
    "broken/empty.wav": "empty_file",
    "broken/text.wav": "unreadable",
    "broken/cut.wav": "truncated",
    "broken/cut.flac": "truncated",
    "broken/nan.wav": "nan_or_inf",
    "broken/zeros.wav": "silent",
    "broken/short.wav": "too_short",
    "broken/quad.wav": "channels",
    "zz-copy.wav": "duplicate_audio",
    "README.md": "not_audio",
}
ACCEPTED = ("good.wav", "mono22k.flac", UNICODE_NAME)
SIDECARS = ("good.json", "good.lrc", "mono22k.json", "mono22k.txt")


def tone(sr: int, seconds: float, freq: float, channels: int, seed: int) -> np.ndarray:
    """A quiet-ish sine plus noise, different per seed so no two test files collide."""
    t = np.arange(round(sr * seconds)) / sr
    noise = np.random.default_rng(seed).standard_normal((t.size, channels))
    return (0.2 * np.sin(2 * np.pi * freq * t)[:, None] + 0.02 * noise).astype(np.float32)


def cut(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def build_folder(root: Path) -> Path:
    (root / "broken").mkdir(parents=True)
    sf.write(root / "good.wav", tone(SR, SECONDS, 440, 2, 1), SR, subtype="PCM_16")
    sf.write(root / "mono22k.flac", tone(22050, SECONDS, 330, 1, 2), 22050)
    sf.write(root / UNICODE_NAME, tone(SR, SECONDS, 550, 2, 3), SR)
    (root / "good.json").write_text(json.dumps(META))
    (root / "good.lrc").write_text(LRC)
    (root / "mono22k.json").write_text("{not json")
    (root / "mono22k.txt").write_text("plain words\nsecond line\n")
    b = root / "broken"
    (b / "empty.wav").write_bytes(b"")
    (b / "text.wav").write_text("this is not a wave file\n" * 20)
    sf.write(b / "full.wav", tone(SR, SECONDS, 200, 2, 4), SR, subtype="PCM_16")
    cut(b / "full.wav", b / "cut.wav")
    (b / "full.wav").unlink()
    sf.write(b / "full.flac", tone(SR, SECONDS, 250, 2, 5), SR)
    cut(b / "full.flac", b / "cut.flac")
    (b / "full.flac").unlink()
    nan = tone(SR, SECONDS, 300, 2, 6)
    nan[1000, 0] = np.nan
    sf.write(b / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(b / "zeros.wav", np.zeros((round(SR * SECONDS), 2), np.float32), SR)
    sf.write(b / "short.wav", tone(SR, 1.0, 440, 2, 7), SR)
    sf.write(b / "quad.wav", tone(SR, SECONDS, 660, 4, 8), SR)
    shutil.copyfile(root / "good.wav", root / "zz-copy.wav")
    (root / "README.md").write_text("# my songs\n")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_folder(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def runs(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[pd.DataFrame, pd.DataFrame, Path]]:
    cfg = IngestConfig(kind="folder", path=str(folder))
    out = {}
    for workers in (1, 2):
        part = tmp_path_factory.mktemp(f"part{workers}")
        tracks, rejected = ingest(cfg, AUDIO, part, workers=workers)
        out[workers] = (tracks, rejected, part)
    return out


def rel(path: str, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def test_every_input_is_accounted_for_once(folder: Path, runs: dict) -> None:
    tracks, rejected, _ = runs[1]
    inputs = {rel(str(p), folder) for p in folder.rglob("*") if p.is_file()} - set(SIDECARS)
    seen = [rel(p, folder) for p in [*tracks["source_path"], *rejected["source_path"]]]
    assert sorted(seen) == sorted(inputs)
    assert len(seen) == len(set(seen)) == len(ACCEPTED) + len(EXPECTED_REJECTS)


def test_rejection_reasons(folder: Path, runs: dict) -> None:
    _, rejected, _ = runs[1]
    got = {rel(p, folder): r for p, r in zip(rejected["source_path"], rejected["reason"], strict=True)}
    assert got == EXPECTED_REJECTS
    dup = rejected.set_index("reason").loc["duplicate_audio", "detail"]
    assert "good.wav" in dup
    assert (rejected["detail"].str.len() > 0).all()


def test_accepted_audio_is_normalised(folder: Path, runs: dict) -> None:
    tracks, _, part = runs[1]
    assert sorted(rel(p, folder) for p in tracks["source_path"]) == sorted(ACCEPTED)
    for row in tracks.itertuples():
        audio, sr = sf.read(row.audio_path, always_2d=True)
        assert Path(row.audio_path).is_relative_to(part)
        assert sr == SR and audio.shape[1] == 2 and np.isfinite(audio).all()
        assert sf.info(row.audio_path).subtype == "PCM_16"
        assert row.duration_s == pytest.approx(SECONDS, abs=1e-3)
        assert np.max(np.abs(audio)) <= AUDIO.peak_ceiling + 1e-3
    mono = tracks[tracks["source_path"].str.endswith("mono22k.flac")].iloc[0]
    assert "mono->stereo" in mono["notes"] and "resampled 22050->44100 Hz" in mono["notes"]
    assert "mono22k.json ignored" in mono["notes"]  # broken sidecar is a note, not a rejection
    assert mono["lyrics"] == "plain words\nsecond line" and not mono["lyrics_timed"]
    assert mono["gender"] == "unknown" and np.isnan(mono["tempo_bpm"])


def test_ids_are_ascii_safe_and_unique(runs: dict) -> None:
    tracks, _, _ = runs[1]
    assert tracks["song_id"].is_unique
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", s) for s in tracks["song_id"])
    cafe = tracks[tracks["source_path"].str.endswith(UNICODE_NAME)]["song_id"].iloc[0]
    assert cafe.startswith("cafe-naive-") and cafe == derive_song_id(UNICODE_NAME)


def test_sidecar_metadata_and_lrc(runs: dict) -> None:
    tracks, _, part = runs[1]
    good = tracks[tracks["source_path"].str.endswith("/good.wav")].iloc[0]
    assert (good["caption"], good["genre"], good["mood"], good["key"]) == (
        "a bright test tone",
        "pop",
        "happy",
        "A minor",
    )
    assert (good["gender"], good["instruments"], good["tempo_bpm"], good["split"]) == (
        "female",
        "piano,bass",
        120.0,
        "valid",
    )
    assert good["lyrics_timed"]
    lines = read_part(part)[0]["lyric_lines.parquet"]
    mine = lines[lines["song_id"] == good["song_id"]]
    assert list(mine["text"]) == ["first line", "twice sung", "middle", "twice sung"]
    assert list(mine["line"]) == [0, 1, 2, 3]
    assert np.all(np.diff(mine["start"]) > 0) and np.all(mine["end"] > mine["start"])
    assert list(mine["end"]) == [2.0, 3.0, 4.0, pytest.approx(SECONDS)]
    assert good["lyrics"] == "first line\ntwice sung\nmiddle\ntwice sung"


def test_part_dir_round_trips(runs: dict) -> None:
    tracks, rejected, part = runs[1]
    tables, rej = read_part(part)
    pd.testing.assert_frame_equal(tables["tracks.parquet"], tracks)
    pd.testing.assert_frame_equal(rej, rejected)
    assert sorted(p.name for p in (part / "audio").iterdir()) == sorted(tracks["song_id"])
    assert json.loads((part / "stats.json").read_text())["songs"] == len(ACCEPTED)


def test_results_do_not_depend_on_workers(runs: dict) -> None:
    (t1, r1, p1), (t2, r2, p2) = runs[1], runs[2]
    pd.testing.assert_frame_equal(t1.drop(columns="audio_path"), t2.drop(columns="audio_path"))
    pd.testing.assert_frame_equal(r1, r2)
    for a, b in zip(t1["audio_path"], t2["audio_path"], strict=True):
        assert Path(a).relative_to(p1) == Path(b).relative_to(p2)
        assert Path(a).read_bytes() == Path(b).read_bytes()


def test_summary_line(runs: dict) -> None:
    tracks, rejected, _ = runs[1]
    line = summary(tracks, rejected)
    assert line.startswith("3 accepted, 10 rejected (") and "truncated: 2" in line


def test_downmix_accepts_multichannel(folder: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(folder / "broken" / "quad.wav", src / "quad.wav")
    cfg = IngestConfig(kind="folder", path=str(src), multichannel="downmix", max_duration_s=4.0, long_files="trim")
    tracks, rejected = ingest(cfg, AUDIO, tmp_path / "part")
    assert rejected.empty and len(tracks) == 1
    row = tracks.iloc[0]
    assert "downmixed 4->2 channels" in row["notes"] and "trimmed 6.00->4 s" in row["notes"]
    audio, _ = sf.read(row["audio_path"], always_2d=True)
    assert audio.shape == (4 * SR, 2) and row["duration_s"] == 4.0


def make_manifest_audio(root: Path) -> None:
    (root / "audio").mkdir(parents=True)
    for k, name in enumerate(("a.wav", "b.wav", "c.wav", "d.wav")):
        sf.write(root / "audio" / name, tone(SR, SECONDS, 200 + 50 * k, 2, 10 + k), SR)


def test_manifest(tmp_path: Path) -> None:
    make_manifest_audio(tmp_path)
    rows = [
        {"path": "audio/a.wav", "id": "song-a", "genre": "rock", "split": "train"},
        {"path": "audio/b.wav", "id": "song-a", "genre": "jazz", "split": ""},
        {"path": "", "id": "song-x", "genre": "", "split": ""},
        {"path": "audio/c.wav", "id": "", "genre": "folk", "split": "bogus"},
        {"path": "audio/d.wav", "id": "../evil", "genre": "", "split": ""},
        {"path": "audio/missing.wav", "id": "", "genre": "", "split": ""},
    ]
    manifest = tmp_path / "list.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    tracks, rejected = ingest(IngestConfig(kind="manifest", path=str(manifest)), AUDIO, tmp_path / "part")
    assert list(tracks["song_id"]) == ["song-a", derive_song_id("audio/c.wav")]
    assert list(tracks["genre"]) == ["rock", "folk"] and (tracks["source"] == "manifest").all()
    assert tracks["split"].iloc[0] == "train" and "bogus" in tracks["notes"].iloc[1]
    assert list(rejected["reason"]) == ["duplicate_id", "bad_row", "bad_id", "missing"]
    assert "audio/a.wav" in rejected["detail"].iloc[0]
    assert len(tracks) + len(rejected) == len(rows)


def test_manifest_without_path_column_fails_loudly(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.tsv"
    pd.DataFrame({"file": ["a.wav"]}).to_csv(manifest, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"bad\.tsv.*'path'"):
        ingest(IngestConfig(kind="manifest", path=str(manifest)), AUDIO, tmp_path / "part")


def test_jsonl_manifest_with_list_instruments(tmp_path: Path) -> None:
    make_manifest_audio(tmp_path)
    manifest = tmp_path / "list.jsonl"
    row = {"path": str(tmp_path / "audio" / "a.wav"), "id": 17, "instruments": ["drums", "guitar"]}
    manifest.write_text(json.dumps(row) + "\n")
    tracks, _ = ingest(IngestConfig(kind="manifest", path=str(manifest)), AUDIO, tmp_path / "part")
    assert (tracks["song_id"].iloc[0], tracks["instruments"].iloc[0]) == ("17", "drums,guitar")


def test_processing_exception_becomes_rejection(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(track_writer, "normalise", boom)
    tracks, rejected = ingest(IngestConfig(kind="folder", path=str(folder)), AUDIO, tmp_path / "part")
    assert tracks.empty
    crashed = rejected[rejected["detail"].str.contains("kaboom")]
    assert set(crashed["reason"]) == {"unreadable"} and len(crashed) == len(ACCEPTED) + 1  # + the copy


def test_truncation_checks(folder: Path, tmp_path: Path) -> None:
    assert container_shortfall(folder / "good.wav") == 0
    assert container_shortfall(folder / "broken" / "cut.wav") > 0
    assert container_shortfall(folder / "mono22k.flac") is None
    aiff = tmp_path / "x.aiff"
    sf.write(aiff, tone(SR, SECONDS, 440, 2, 20), SR, subtype="PCM_16")
    cut(aiff, tmp_path / "cut.aiff")
    result = check_audio(tmp_path / "cut.aiff", 0.0, -60.0, False)
    assert isinstance(result, Rejection) and result.reason == "truncated"


def test_parse_lrc_ignores_tags_and_sorts() -> None:
    events = parse_lrc("[ti:x]\n[01:02.5]<01:02.5>late\n[00:01:50]early\nno stamp\n[00:03.00]\n")
    assert events == ((1.5, "early"), (3.0, ""), (62.5, "late"))


def test_cli_prints_summary(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(folder / "good.wav", src / "good.wav")
    (src / "notes.txt").write_text("not a sidecar: no audio file named notes")
    assert ing.main(["--kind", "folder", "--path", str(src), "--out", str(tmp_path / "part"), "--workers", "1"]) == 0
    assert capsys.readouterr().out.strip() == "1 accepted, 1 rejected (not_audio: 1)"


def test_config_from_validated_dict() -> None:
    config = validate({"corpus": {"source": "manifest", "ingest": {"path": "m.csv", "extensions": [".wav"]}}})
    cfg = IngestConfig.from_config(config)
    assert (cfg.kind, cfg.path, cfg.extensions) == ("manifest", "m.csv", (".wav",))
    assert (cfg.max_duration_s, cfg.long_files) == (600.0, "split")
    with pytest.raises(ConfigError, match=r"corpus\.ingest\.path"):
        IngestConfig.from_config(validate({"corpus": {"source": "folder"}}))


@pytest.mark.parametrize(
    ("ingest_cfg", "key"),
    [
        ({"max_duration_s": None}, r"corpus\.ingest\.max_duration_s"),  # unbounded is no longer allowed
        ({"max_duration_s": 0}, r"corpus\.ingest\.max_duration_s"),
        ({"long_files": "keep"}, r"corpus\.ingest\.long_files"),
    ],
)
def test_bad_long_file_settings_name_their_key(ingest_cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        validate({"corpus": {"source": "folder", "ingest": {"path": "x", **ingest_cfg}}})


def test_split_needs_parts_longer_than_the_minimum(tmp_path: Path) -> None:
    config = validate({"corpus": {"source": "folder", "ingest": {"path": "x", "max_duration_s": 9}}})
    with pytest.raises(ConfigError, match=r"max_duration_s \(9\) must be at least twice min_duration_s \(5\)"):
        IngestConfig.from_config(config)
    with pytest.raises(ConfigError, match="long_files=split"):
        ingest(IngestConfig(kind="folder", path=str(tmp_path), max_duration_s=9.0), AUDIO, tmp_path / "part")
    ingest(
        IngestConfig(kind="folder", path=str(tmp_path), max_duration_s=9.0, long_files="trim"), AUDIO, tmp_path / "p"
    )


def test_streaming_checks_hash_like_the_whole_array(folder: Path) -> None:
    for name in ("good.wav", "mono22k.flac"):  # both are several BLOCK_FRAMES long
        scanned = check_audio(folder / name, 0.0, -60.0, False)
        whole, sr = sf.read(folder / name, dtype="float32", always_2d=True)
        assert scanned.frames > BLOCK_FRAMES and scanned.frames == whole.shape[0] and scanned.sample_rate == sr
        assert scanned.content_sha1 == sha1_of_samples(whole)


# --- recordings longer than max_duration_s: split, trim, reject --------------------------------

LONG_S = 7.0
MAX_S = 3.0  # 7 s -> three parts of 7/3 s
LONG_LRC = "[00:01.00] one\n[00:02.00] two\n[00:05.00] three\n"
LONG_META = {"genre": "jazz", "caption": "a long take"}


def build_long_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    sf.write(root / "long.wav", tone(SR, LONG_S, 440, 2, 30), SR, subtype="PCM_16")
    (root / "long.lrc").write_text(LONG_LRC)
    (root / "long.json").write_text(json.dumps(LONG_META))
    quiet_end = tone(22050, LONG_S, 330, 1, 31)
    quiet_end[round(22050 * 4.5) :] = 0.0  # the last part (from 4.67 s) is silent, the file is not
    sf.write(root / "quiet-end.flac", quiet_end, 22050)
    (root / "quiet-end.txt").write_text("words without times\n")
    sf.write(root / "short.wav", tone(SR, 2.5, 550, 2, 32), SR)  # fits: untouched by long_files
    shutil.copyfile(root / "long.wav", root / "zz-long-copy.wav")
    return root


@pytest.fixture(scope="module")
def long_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The long folder ingested with every long_files value (split twice: 1 and 2 workers)."""
    root = build_long_folder(tmp_path_factory.mktemp("long") / "src")
    out = {"root": root}
    for key, mode, workers in (
        ("split", "split", 1),
        ("split2", "split", 2),
        ("trim", "trim", 1),
        ("reject", "reject", 1),
    ):
        cfg = IngestConfig(kind="folder", path=str(root), min_duration_s=1.0, max_duration_s=MAX_S, long_files=mode)
        part = tmp_path_factory.mktemp(f"long-{key}")
        out[key] = (*ingest(cfg, AUDIO, part, workers=workers), part)
    return out


def test_split_makes_equal_parts_of_the_recording(long_runs: dict) -> None:
    tracks, _, _ = long_runs["split"]
    root, long_id = long_runs["root"], derive_song_id("long.wav")
    parts = tracks[tracks["source_path"] == str(root / "long.wav")].reset_index(drop=True)
    assert list(parts["song_id"]) == [f"{long_id}-p00", f"{long_id}-p01", f"{long_id}-p02"]
    source, _ = sf.read(root / "long.wav", dtype="float32", always_2d=True)
    cuts = [k * source.shape[0] // 3 for k in range(4)]
    for k, row in parts.iterrows():
        assert row["duration_s"] == pytest.approx((cuts[k + 1] - cuts[k]) / SR) and row["duration_s"] <= MAX_S
        assert f"part {k + 1} of 3: {cuts[k] / SR:.2f}-{cuts[k + 1] / SR:.2f} s of the recording" in row["notes"]
        assert (row["genre"], row["caption"]) == ("jazz", "a long take")  # sidecar metadata on every part
        segment = source[cuts[k] : cuts[k + 1]]
        assert row["content_sha1"] == sha1_of_samples(segment)  # decoded after a seek, hashed per part
        mix, _ = sf.read(row["audio_path"], dtype="float32", always_2d=True)
        gain = 10 ** (row["gain_db"] / 20)
        np.testing.assert_allclose(mix / gain, segment, atol=1.5 / 32767 / gain)  # the right stretch, scaled
    assert parts["split"].nunique() == 1  # all parts of a recording in one split: no leak across splits
    assert sum(parts["duration_s"]) == pytest.approx(LONG_S)


def test_split_shifts_and_clips_timed_lyrics(long_runs: dict) -> None:
    tracks, _, part = long_runs["split"]
    lines = read_part(part)[0]["lyric_lines.parquet"]
    third = LONG_S / 3
    expect = {  # one 1-2 s, two 2-5 s, three 5-7 s of the recording, cut at 7/3 and 14/3 s
        "p00": [("one", 1.0, 2.0), ("two", 2.0, third)],
        "p01": [("two", 0.0, third)],
        "p02": [("two", 0.0, 5.0 - 2 * third), ("three", 5.0 - 2 * third, third)],
    }
    for suffix, want in expect.items():
        song_id = f"{derive_song_id('long.wav')}-{suffix}"
        mine = lines[lines["song_id"] == song_id]
        got = list(zip(mine["text"], mine["start"], mine["end"], strict=True))
        assert [t for t, _, _ in got] == [t for t, _, _ in want]
        np.testing.assert_allclose([(s, e) for _, s, e in got], [(s, e) for _, s, e in want], atol=1e-3)
        row = tracks.set_index("song_id").loc[song_id]
        assert row["lyrics"] == "\n".join(t for t, _, _ in want) and row["lyrics_timed"]


def test_split_rejects_a_silent_part_and_duplicate_parts(long_runs: dict) -> None:
    tracks, rejected, _ = long_runs["split"]
    root = long_runs["root"]
    quiet_id = derive_song_id("quiet-end.flac")
    quiet = tracks[tracks["source_path"] == str(root / "quiet-end.flac")]
    assert list(quiet["song_id"]) == [f"{quiet_id}-p00", f"{quiet_id}-p01"]
    assert quiet["notes"].str.contains("resampled 22050->44100 Hz").all()
    assert quiet["notes"].str.contains("untimed lyrics left out").all() and (quiet["lyrics"] == "").all()
    rows = zip(rejected["source_path"], rejected["song_id"], rejected["reason"], strict=True)
    got = {(Path(p).name, s, r) for p, s, r in rows}
    copy_id = derive_song_id("zz-long-copy.wav")
    assert got == {
        ("quiet-end.flac", f"{quiet_id}-p02", "silent"),
        *{("zz-long-copy.wav", f"{copy_id}-p0{k}", "duplicate_audio") for k in range(3)},
    }
    silent = rejected[rejected["reason"] == "silent"]["detail"].iloc[0]
    assert silent.startswith("part 3 of 3: 4.67-7.00 s of the recording: RMS")
    short = tracks[tracks["source_path"] == str(root / "short.wav")]
    assert list(short["song_id"]) == [derive_song_id("short.wav")] and "part" not in short["notes"].iloc[0]
    assert summary(tracks, rejected) == "6 accepted, 4 rejected (duplicate_audio: 3, silent: 1)"


def test_split_does_not_depend_on_workers(long_runs: dict) -> None:
    (t1, r1, p1), (t2, r2, _) = long_runs["split"], long_runs["split2"]
    pd.testing.assert_frame_equal(t1.drop(columns="audio_path"), t2.drop(columns="audio_path"))
    pd.testing.assert_frame_equal(r1, r2)
    assert sorted(p.name for p in (p1 / "audio").iterdir()) == sorted(t1["song_id"])  # duplicates removed
    for a, b in zip(t1["audio_path"], t2["audio_path"], strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def test_trim_keeps_the_start(long_runs: dict) -> None:
    tracks, rejected, part = long_runs["trim"]
    root = long_runs["root"]
    row = tracks.set_index("source_path").loc[str(root / "long.wav")]
    assert row["song_id"] == derive_song_id("long.wav") and row["duration_s"] == MAX_S
    assert "trimmed 7.00->3 s" in row["notes"]
    whole, _ = sf.read(root / "long.wav", dtype="float32", always_2d=True)
    assert row["content_sha1"] == sha1_of_samples(whole)  # the recording's hash, as before trimming existed
    lines = read_part(part)[0]["lyric_lines.parquet"]
    mine = lines[lines["song_id"] == row["song_id"]]
    assert list(zip(mine["text"], mine["end"], strict=True)) == [("one", 2.0), ("two", MAX_S)]
    assert row["lyrics"] == "one\ntwo"  # the text agrees with the lines that are left
    assert list(rejected["reason"]) == ["duplicate_audio"]


def test_reject_gives_too_long(long_runs: dict) -> None:
    tracks, rejected, _ = long_runs["reject"]
    assert "too_long" in REASONS
    assert [Path(p).name for p in tracks["source_path"]] == ["short.wav"]
    assert list(rejected["reason"]) == ["too_long"] * 3
    assert rejected["detail"].iloc[0] == (
        "7.00 s is longer than the 3 s maximum (corpus.ingest.long_files=reject; split or trim would keep it)"
    )


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile built without MPEG support")
def test_mp3_read_in_blocks_gives_the_samples_of_a_whole_read(tmp_path: Path) -> None:
    # soundfile's own block reads re-seek after each block, and such an MP3 then decodes to other
    # samples from the second block on; SequentialSoundFile must read exactly what sf.read does.
    t = np.arange(round(SR * LONG_S)) / SR
    sf.write(tmp_path / "sine.mp3", (0.2 * np.sin(2 * np.pi * 440 * t))[:, None].astype(np.float32), SR)
    whole, _ = sf.read(tmp_path / "sine.mp3", dtype="float32", always_2d=True)
    scanned = check_audio(tmp_path / "sine.mp3", 0.0, -60.0, False)
    assert scanned.frames == whole.shape[0] > 2 * BLOCK_FRAMES
    assert scanned.content_sha1 == sha1_of_samples(whole)
    cfg = IngestConfig(kind="folder", path=str(tmp_path), min_duration_s=1.0, max_duration_s=MAX_S)
    tracks, rejected = ingest(cfg, AUDIO, tmp_path / "part")
    cuts = [k * whole.shape[0] // 3 for k in range(4)]
    assert rejected.empty and list(tracks["content_sha1"]) == [sha1_of_samples(whole[a:b]) for a, b in pairwise(cuts)]


def test_shift_lrc() -> None:
    lrc = ((1.0, "a"), (2.0, "b"), (3.0, ""), (4.0, "c"))
    assert shift_lrc(lrc, 0.0, 10.0) == lrc
    assert shift_lrc(lrc, 2.5, 1.0) == ((0.0, "b"), (0.5, ""))  # b is being sung at the cut
    assert shift_lrc(lrc, 3.5, 5.0) == ((0.0, ""), (0.5, "c"))
    assert shift_lrc(lrc, 0.0, 2.0) == ((1.0, "a"),)


def test_part_ids_are_kept_for_parts() -> None:
    items = [Item("a.wav", "x"), Item("b.wav", "x-p00"), Item("c.wav", "y-p01")]
    assert [i.rejection for i in claim_ids(items)] == [None, None, None]
    claimed = claim_ids(items, reserve_part_ids=True)
    assert [i.rejection is None for i in claimed] == [True, False, True]
    assert claimed[1].rejection.reason == "duplicate_id" and "a.wav" in claimed[1].rejection.detail
    assert part_id("x", 3, 12) == "x-p03" and part_id("x", 7, 180) == "x-p007"


def test_a_failed_recording_leaves_no_audio(long_runs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def dies_after_one_part(job: tuple[str, str], cfg: IngestConfig, audio: CorpusAudio, out_dir: Path) -> Rejection:
        (out_dir / "audio" / f"{job[1]}-p00").mkdir(parents=True)  # as a worker killed mid-way leaves it
        return Rejection("unreadable", "worker failed: killed")

    monkeypatch.setattr(ing, "process_file", dies_after_one_part)
    cfg = IngestConfig(kind="folder", path=str(long_runs["root"]), min_duration_s=1.0, max_duration_s=MAX_S)
    tracks, rejected = ingest(cfg, AUDIO, tmp_path / "part")
    assert tracks.empty and set(rejected["reason"]) == {"unreadable"}
    assert not any((tmp_path / "part" / "audio").iterdir())
