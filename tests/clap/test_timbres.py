"""CLAP's timbre variants: the train songs' notes and balance with other instruments, never the shifted corpus'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.clap import timbres as T
from musicot.clap.data import load_stems
from musicot.config import ConfigError, build
from musicot.data.compose import PITCHED_STEMS, SynthConfig, compose_song
from musicot.data.render import SoundFontError
from musicot.data.table import STEMS
from tests.conftest import tiny_config

SR = 16_000  # the tiny CLAP tower's rate, which the variants are written at


def _config(**timbres) -> dict:
    config = tiny_config()
    config["clap"]["timbres"].update(timbres)
    return config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Shard 0 of the tiny corpus with every song in the train split (tracks_train.parquet beside it)."""
    from musicot.data.synth import render_shard

    config = tiny_config()
    out = tmp_path_factory.mktemp("timbres") / "shard0"
    render_shard(config, 0, out)
    tracks = pd.read_parquet(out / "tracks.parquet").assign(split="train")
    tracks.to_parquet(out / "tracks_train.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def variants(corpus, tmp_path_factory):
    config = _config(variants=2)
    out = tmp_path_factory.mktemp("variants") / "timbres"
    stats = T.build_timbres(config, corpus / "tracks_train.parquet", out)
    return config, corpus, out, stats


def test_variants_change_the_instruments_and_keep_notes_and_balance(variants):
    config, corpus, out, stats = variants
    tracks = pd.read_parquet(corpus / "tracks_train.parquet")
    table = pd.read_parquet(out / "variants.parquet")
    assert stats["variants"] == len(table) == 2 * len(tracks) and stats["skipped"] == 0
    section = config["clap"]["timbres"]
    synth = build(SynthConfig, config["corpus"]["synth"])
    for row in table.itertuples():
        plan = compose_song(int(row.source_song[5:]), synth, config["seed"])
        for stem in PITCHED_STEMS:
            program = getattr(row, f"program_{stem}")
            assert program in section["programs"][stem] and program != plan.parts[stem].program, (row, stem)
        assert row.drum_kit in section["drum_kits"]
        assert row.soundfont in {s.rsplit("/", 1)[-1] for s in section["soundfonts"]}
        original = load_stems(tracks.set_index("song_id").loc[row.source_song, "stems_dir"], SR)
        variant = load_stems(out / "audio" / row.song_id, SR)
        mix, _ = sf.read(out / "audio" / row.song_id / "mix.flac", dtype="int16")
        ints = [sf.read(out / "audio" / row.song_id / f"{s}.flac", dtype="int16")[0].astype(np.int32) for s in STEMS]
        assert np.array_equal(mix.astype(np.int32), np.sum(ints, axis=0))  # mix == sum of stems, exactly
        for stem in STEMS:
            a, b = original[stem], variant[stem][: len(original[stem])]
            level_a, level_b = np.sqrt(np.mean(a**2)), np.sqrt(np.mean(b**2))
            if level_a < 1e-4:
                continue
            assert abs(20 * np.log10(level_b / level_a)) < 1.0, (row.song_id, stem)  # the song's balance kept
            if stem == "vocals":
                assert np.corrcoef(a, b)[0, 1] > 0.99  # the original voice
                continue
            assert np.corrcoef(_frame_rms(a), _frame_rms(b))[0, 1] > 0.5, (row.song_id, stem)  # same notes, same places
            assert abs(np.corrcoef(a, b)[0, 1]) < 0.9, (row.song_id, stem)  # another sound


def _frame_rms(x: np.ndarray, hop: int = SR // 2) -> np.ndarray:
    return np.sqrt(np.mean(x[: len(x) // hop * hop].reshape(-1, hop) ** 2, axis=1))


def test_variants_are_a_corpus_part_clap_trains_on(variants):
    _, _, out, _ = variants
    tracks = pd.read_parquet(out / "tracks.parquet")
    volume = pd.read_parquet(out / "stem_volume.parquet")
    assert (tracks["split"] == "train").all() and tracks["song_id"].str.match(r"^synth\d{5}_t\d$").all()
    assert set(volume["song_id"]) == set(tracks["song_id"]) and set(volume["stem"]) == set(STEMS)
    assert (tracks["sample_rate"] == SR).all()


def test_variants_repeat_exactly(variants, tmp_path):
    config, corpus, out, _ = variants
    again = tmp_path / "timbres"
    T.build_timbres(config, corpus / "tracks_train.parquet", again, threads=2)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "variants.parquet"), pd.read_parquet(again / "variants.parquet")
    )
    for song in pd.read_parquet(out / "variants.parquet")["song_id"]:
        a, _ = sf.read(out / "audio" / song / "mix.flac", dtype="int16")
        b, _ = sf.read(again / "audio" / song / "mix.flac", dtype="int16")
        assert np.array_equal(a, b), song


def test_songs_without_a_plan_are_listed_not_dropped(corpus, tmp_path):
    tracks = pd.read_parquet(corpus / "tracks_train.parquet")
    user = tracks.iloc[:1].assign(song_id="my_song", stems_dir="")
    path = corpus / "tracks_user.parquet"
    pd.concat([tracks.iloc[:1], user]).to_parquet(path, index=False)
    stats = T.build_timbres(_config(variants=1), path, tmp_path / "timbres")
    rejected = pd.read_csv(tmp_path / "timbres" / "rejected.tsv", sep="\t")
    assert stats["skipped"] == 1 and stats["variants"] == 1
    assert list(rejected["song_id"]) == ["my_song"] and rejected["reason"].iloc[0] == "no_plan"


def test_no_variants_writes_an_empty_part(corpus, tmp_path):
    stats = T.build_timbres(_config(variants=0), corpus / "tracks_train.parquet", tmp_path / "timbres")
    assert stats["variants"] == 0 and pd.read_parquet(tmp_path / "timbres" / "tracks.parquet").empty


def test_timbres_may_not_share_programs_or_kits_with_the_shifted_corpus():
    config = tiny_config()
    T.check_disjoint(config["clap"]["timbres"], config["analysis"]["shifted"])  # the defaults are disjoint
    clash = _config(programs={**config["clap"]["timbres"]["programs"], "bass": [32, 37]}, drum_kits=[0, 25])
    with pytest.raises(ConfigError, match=r"bass programs \[37\].*drum kits \[25\]"):
        T.check_disjoint(clash["clap"]["timbres"], clash["analysis"]["shifted"])


def test_a_missing_soundfont_is_named(corpus, tmp_path):
    with pytest.raises(SoundFontError, match=r"nowhere\.sf2"):
        T.build_timbres(
            _config(variants=1, soundfonts=["/nowhere.sf2"]), corpus / "tracks_train.parquet", tmp_path / "t"
        )


def test_a_soundfont_without_the_kit_plays_the_standard_one():
    rng = np.random.default_rng(0)
    cfg = T.TimbreConfig(1, ("fm.sf2",), {s: (1, 2) for s in PITCHED_STEMS}, (8, 24))
    presets = {"fm.sf2": (frozenset(range(128)), frozenset({0}))}
    soundfont, kit, programs = T.draw_variant({s: 1 for s in PITCHED_STEMS}, cfg, presets, rng)
    assert (soundfont, kit) == ("fm.sf2", 0) and set(programs.values()) == {2}
