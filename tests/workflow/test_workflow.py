"""The DAG itself: dry run, lint, config errors before any job, tiny end-to-end runs."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

from tests.conftest import REPO

SNAKEFILE = REPO / "workflow" / "Snakefile"


def snakemake(workdir: Path, *args: str, config: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake on the repo's Snakefile in `workdir` with the venv's tools first on PATH."""
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    extra = []
    if config is not None:
        (workdir / "override.yaml").write_text(yaml.safe_dump(config))
        extra = ["--configfile", str(workdir / "config.yaml"), str(workdir / "override.yaml")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *extra, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


# Every stage at micro scale: the integration run that chains the whole DAG on CPU.
TINY = {
    "corpus": {
        "sample_rate": 16000,
        "split_fractions": {"valid": 0.34, "reference": 0.0},
        "synth": {"n_songs": 3, "shards": 2, "duration_s": [8, 10]},
    },
    "prep": {"separation": {"steps": 3, "eval_every": 2, "batch_size": 2, "crop_s": 1.0, "segment_s": 2.0}},
    # 2 s windows at a 1 s hop give each 8-10 s song several windows to correlate over
    "clap": {
        "window_s": 2.0,
        "hop_s": 1.0,
        "train_hop_s": 2.0,
        "batch_size": 2,
        "crop_s": 2.0,
        "tag_steps": 2,
        "feature_samples": 8,
        "contrastive_batch_size": 4,
        "max_steps": 2,
        "warmup_steps": 1,
        "eval_every": 2,
        "checkpoint_every": 2,
        "log_every": 1,
        "timbres": {"variants": 1},  # the train songs re-rendered join CLAP's train windows
    },
    "rvq": {"levels": 2, "codebook_size": 4, "kmeans_iters": 2, "steps": 2, "batch_size": 8, "eval_every": 1},
    "analysis": {"shifted": {"n_songs": 2, "duration_s": [8, 10]}},
    "semantic": {
        "n_mels": 16,
        "n_tokens": 8,
        "layer": 1,
        "model": {"hidden": 16, "layers": 2, "heads": 2, "intermediate": 32, "conv_kernel": 3},
        "ssl": {
            "steps": 2,
            "batch_size": 2,
            "crop_s": 1.0,
            "codebook_size": 16,
            "warmup_steps": 1,
            "eval_every": 1,
            "checkpoint_every": 1,
            "log_every": 1,
        },
        "kmeans": {"max_frames": 500, "max_iter": 5},
        "probe": {"max_train_frames": 200, "max_iter": 50},
    },
    "lm": {
        "model": {"hidden": 16, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 32, "max_positions": 512},
        "tokenizer": {"vocab_size": 100},
        "max_audio_s": 2.0,
        "train": {"steps": 2, "batch_size": 2, "warmup": 1, "eval_every": 1, "checkpoint_every": 1, "log_every": 1},
        "eval": {"shuffles": 1, "bootstrap": 100},
        "sample": {"batch_size": 2, "duration_s": 1.0},
    },
    "acoustic": {
        "vae": {
            "model": {
                "encoder_hidden_size": 4,
                "decoder_channels": 2,
                "downsampling_ratios": [8, 64],
                "channel_multiples": [1, 2],
            },
            "discriminator": {"channels": 2, "n_ffts": [128]},
            "train": {
                "steps": 2,
                "batch_size": 1,
                "disc_start": 1,
                "stft_ffts": [256, 64],
                "eval_every": 1,
                "checkpoint_every": 1,
                "log_every": 1,
            },
        },
        "mel": {"n_mels": 16, "n_fft": 1024, "hop": 512, "griffin_lim_iters": 2},
        "dit": {
            "model": {
                "num_layers": 1,
                "attention_head_dim": 8,
                "num_attention_heads": 2,
                "num_key_value_attention_heads": 1,
                "cross_attention_dim": 8,
                "time_proj_dim": 8,
                "token_dim": 4,
            },
            "train": {
                "steps": 2,
                "batch_size": 2,
                "segment_s": 1.0,
                "warmup_steps": 1,
                "eval_every": 1,
                "checkpoint_every": 1,
                "log_every": 1,
            },
            "sample": {"steps": 2},
        },
        "eval": {"max_songs": 2, "max_seconds": 10.0},
    },
    # two systems of Table 1 on three prompts: the thought plans two 2 s frames, one second is rendered
    "generate": {
        "max_prompts": 3,
        "song_s": 4.0,
        "render_batch": 2,
        "systems": [{"name": "base", "lm": "base"}, {"name": "musicot", "lm": "musicot"}],
        "copy": {"prefix_s": 0.5, "bootstrap": 100},
    },
    # the tiny corpus has no reference split: FAD compares with the valid song
    "evaluate": {"fad": {"reference_split": "valid", "floor_split": "", "bootstrap": 20, "inf_points": 2}},
}
GENERATED_TABLES = ("table1", "table1_orderings", "analyzability", "copying", "mos")
GENERATED_FIGURES = ("generated_timeline", "generated_scatter", "thought_layout", "training_curves", "rtf_breakdown")
THOUGHT_RULES = ("train_clap", "embed_clap", "train_rvq", "thought_analyzability")


def test_dry_run_lists_the_corpus_rules(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/tables")
    assert result.returncode == 0, result.stderr
    for rule in ("synth_shard", "corpus_table", "train_separator", "separate", "vad", "lyrics", "structure", "tags"):
        assert rule in result.stdout, rule
    for rule in THOUGHT_RULES:
        assert f"rule {rule}:" in result.stdout, rule


def test_dry_run_resolves_the_analyzability_and_its_figure(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/analysis/thought_analyzability.csv")
    assert result.returncode == 0, result.stderr
    for rule in (*THOUGHT_RULES, "separate"):
        assert f"rule {rule}:" in result.stdout, rule
    assert "rule thought_timeline:" not in result.stdout and "rule tables:" not in result.stdout
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/figures/thought_timeline.png")
    assert result.returncode == 0, result.stderr
    assert "rule thought_timeline:" in result.stdout and "rule tables:" not in result.stdout


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_bad_config_fails_before_any_job_naming_the_key(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", config={"corpus": {"synth": {"n_songs": "many"}}})
    assert result.returncode != 0
    assert "corpus.synth.n_songs: 'many' is not of type 'integer'" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_timbres_that_would_train_on_the_shifted_corpus_fail_before_any_job(tmp_path):
    config = {"clap": {"timbres": {"drum_kits": [0, 25]}}}  # TR-808 is one of the shifted corpus' kits
    result = snakemake(tmp_path, "-n", "--cores", "1", config=config)
    assert result.returncode != 0
    assert "clap.timbres shares drum kits [25] with analysis.shifted" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_ingest_source_without_path_is_a_clear_error(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", config={"corpus": {"source": "folder"}})
    assert result.returncode != 0
    assert "corpus.ingest.path is required" in result.stdout + result.stderr


def _write_songs(folder: Path, sidecars: dict[str, dict | None], sample_rate: int = 16000) -> None:
    """Short songs of distinct chords and noise bursts, with a .json sidecar where one is given."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, (name, meta) in enumerate(sidecars.items()):
        t = np.arange(int(sample_rate * (8 + k))) / sample_rate
        chord = sum(np.sin(2 * np.pi * f * (k + 1) * t) for f in (220.0, 277.2, 329.6)) / 6
        bursts = (np.sin(2 * np.pi * (k + 1) * t) > 0.5) * rng.normal(0, 0.1, t.size)
        sf.write(folder / f"{name}.wav", np.stack([chord + bursts, chord - bursts], axis=1), sample_rate)
        if meta is not None:
            (folder / f"{name}.json").write_text(json.dumps(meta))


def test_captionless_folder_stops_before_any_job_naming_the_key(tmp_path):
    _write_songs(tmp_path / "music", {"a": None, "b": None, "c": None})
    config = {"corpus": {"source": "folder", "sample_rate": 16000, "ingest": {"path": str(tmp_path / "music")}}}
    result = snakemake(tmp_path, "--cores", "1", config=config)  # a real run, not a dry run
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "this configuration cannot make CLAP" in out and "Config key: `clap.pretrained`" in out, out[-3000:]
    assert "3 audio files with 0 distinct caption" in out
    assert not (tmp_path / "results/corpus").exists()  # no job ran
    # what does not need CLAP still runs, without the steps that need stems
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/prep/quality.csv", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    for rule in ("ingest_corpus", "lyrics", "structure", "tags", "prep_quality"):
        assert f"rule {rule}:" in result.stdout, rule
    for rule in ("train_separator", "separate", "vad", "score_separation", "train_clap"):
        assert f"rule {rule}:" not in result.stdout, rule


def test_a_target_that_needs_a_missing_checkpoint_names_it(tmp_path):
    config = {"prep": {"separation": {"checkpoint": str(tmp_path / "no_demucs")}}}
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/prep/quality.csv", config=config)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "this configuration cannot make separation" in out and "Config key: `prep.separation.checkpoint`" in out
    assert "no_demucs does not exist" in out


def test_tiny_synth_run_end_to_end_then_a_folder_of_songs_in_the_same_checkout(tmp_path):
    _tiny_synth_run_end_to_end(tmp_path)
    _switch_to_a_folder_of_songs(tmp_path)


def _switch_to_a_folder_of_songs(tmp_path: Path) -> None:
    """Build with the synth config, switch to a captioned folder of songs: no table keeps a synth row."""
    before = {p.name: p.read_text() for p in (tmp_path / "results/tables").glob("*.csv")}
    songs = {
        "ballad": {"caption": "a slow sad ballad", "split": "train"},
        "stomp": {"genre": "rock", "mood": "energetic", "split": "train"},
        "drone": {"caption": "a calm ambient drone", "split": "valid"},
    }
    _write_songs(tmp_path / "music", songs)
    folder = {"source": "folder", "ingest": {"path": str(tmp_path / "music")}}
    config = {**TINY, "corpus": {**TINY["corpus"], **folder}}
    result = snakemake(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    tracks = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")
    assert len(tracks) == 3 and not tracks["song_id"].str.startswith("synth").any()
    after = {p.name: p.read_text() for p in (tmp_path / "results/tables").glob("*.csv")}
    assert set(after) == {*before, "absent.csv"}
    corpus = pd.read_csv(tmp_path / "results/tables/corpus.csv")
    assert corpus.loc[corpus.split == "all", "songs"].item() == 3
    absent = pd.read_csv(tmp_path / "results/tables/absent.csv")
    assert {"separator", "separation SDR", "VAD", "analyzability on true stems"} <= set(absent["result"])
    # preprocessing: the synth run's separation and VAD numbers are gone, an absent row says why
    prep = pd.read_csv(tmp_path / "results/tables/prep_quality.csv")
    for step in ("separation SDR", "VAD"):
        row = prep[prep.step == step]
        assert list(row.metric) == ["absent"] and row.value.isna().all(), step
    assert not set(prep.loc[prep.metric != "absent", "step"]) & {"separation", "vad"}
    # the thought: CLAP and RVQ of these songs, no analyzability number from the synth run
    thought = pd.read_csv(tmp_path / "results/tables/thought.csv")
    assert "analyzability r" not in set(thought["part"])
    for part in ("analyzability on true stems", "analyzability on separated stems", "CLAP tagging stage"):
        assert thought.loc[thought.part == part, "metric"].str.startswith("absent: ").all(), part
    old_rows = set(pd.read_csv(io.StringIO(before["thought.csv"])).itertuples(index=False))
    assert not old_rows & set(thought.itertuples(index=False))
    # the synth songs' ratings file rates a kit that is gone: rejected by name, Table 1 has no MOS again
    rejected = pd.read_csv(tmp_path / "results/metrics/mos_rejected.tsv", sep="\t")
    assert len(rejected) == 1 and "rates kit" in rejected["problem"].item(), rejected
    table1 = pd.read_csv(tmp_path / "results/tables/table1.csv")
    assert (table1.loc[table1["source"] == "this run", "MOS"] == "n/a (no ratings)").all()
    windows = pd.read_parquet(tmp_path / "results/analysis/thought_windows.parquet")
    assert set(windows["song_id"]) == set(tracks.loc[tracks.split == "valid", "song_id"])
    # the synth run's stems and separator are set aside, not deleted, and not used
    assert not (tmp_path / "results/prep/stems").exists()
    assert (tmp_path / "results/stale/prep/stems/synth00000/vocals.flac").exists()
    assert (tmp_path / "results/stale/prep/separator").is_dir()
    # switching back plans the separator again instead of taking anything from results/stale
    result = snakemake(tmp_path, "-n", "--cores", "1", config=TINY)
    assert result.returncode == 0 and "rule train_separator:" in result.stdout and "rule separate:" in result.stdout
    # a local Demucs checkpoint (here the synth run's trained one, in demucs' format) brings separation back
    shutil.copytree(tmp_path / "results/stale/prep/separator", tmp_path / "demucs")
    separation = {"checkpoint": str(tmp_path / "demucs"), "model": "musicot_htdemucs"}
    config["prep"] = {"separation": {**TINY["prep"]["separation"], **separation}}
    result = snakemake(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in (tmp_path / "results/prep/stems").iterdir() if p.is_dir()} == set(tracks["song_id"])
    absent = pd.read_csv(tmp_path / "results/tables/absent.csv")
    assert "separation SDR" in set(absent["result"]) and not {"separator", "VAD"} & set(absent["result"])
    thought = pd.read_csv(tmp_path / "results/tables/thought.csv")
    separated = thought[thought.metric.str.endswith("vs separated stems")]
    assert len(separated) == 5 and (separated["n"] > 0).any()  # quiet separated stems are excluded (issue 12)
    assert thought.loc[thought.part == "analyzability on true stems", "metric"].str.startswith("absent: ").all()


def _tiny_synth_run_end_to_end(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--cores", "2", config=TINY)  # the default target: every table and figure
    assert result.returncode == 0, result.stderr[-3000:]
    tracks = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")
    assert list(tracks.song_id) == ["synth00000", "synth00001", "synth00002"]
    table = pd.read_csv(tmp_path / "results/tables/corpus.csv")
    assert table.loc[table.split == "all", "songs"].item() == 3
    for name in ("corpus", "prep_quality", "thought", "acoustic"):
        for ext in ("csv", "md", "tex"):
            assert (tmp_path / f"results/tables/{name}.{ext}").stat().st_size > 0
    quality = pd.read_csv(tmp_path / "results/prep/quality.csv")
    assert set(quality.step) == {"separation", "vad", "lyrics", "structure", "tags"}
    assert (tmp_path / "results/prep/stems/synth00000/vocals.flac").exists()
    assert (tmp_path / "benchmarks/corpus/synth_shard0.tsv").exists()
    # the thought: CLAP windows -> RVQ codes -> analyzability of the one held-out (valid) song
    windows = pd.read_parquet(tmp_path / "results/clap/embeddings/windows.parquet")
    assert len(np.load(tmp_path / "results/clap/embeddings/windows.npy")) == len(windows)
    codes = pd.read_parquet(tmp_path / "results/rvq/codes.parquet")
    assert len(codes) == 2 * len(windows) and codes["code"].between(0, 3).all()
    rows = pd.read_csv(tmp_path / "results/analysis/thought_analyzability.csv")
    assert set(zip(rows.embedding, rows.stems, strict=True)) == {
        ("quantized", "truth"),
        ("quantized", "separated"),
        ("raw", "truth"),
    }
    assert len(rows) == 3 * 5 and rows["paper_r"].notna().all()
    held_out = windows[windows["split"] != "train"]
    per_window = pd.read_parquet(tmp_path / "results/analysis/thought_windows.parquet")
    assert len(per_window) == len(held_out) > 1
    assert per_window["sim_vocals"].between(-1, 1).all() and per_window["volume_truth_drums"].notna().all()
    for name in ("thought_timeline", "separator_curve"):
        for ext in ("pdf", "png"):
            assert (tmp_path / f"results/figures/{name}.{ext}").stat().st_size > 0
    thought = pd.read_csv(tmp_path / "results/tables/thought.csv")
    assert {"CLAP", "RVQ (valid split)", "analyzability r", "analyzability r, shifted corpus"} <= set(thought["part"])
    # the shifted corpus: its own songs, analysed with the trained CLAP and RVQ, beside the held-out r
    shifted = pd.read_csv(tmp_path / "results/analysis/thought_shifted.csv")
    assert len(shifted) == 2 * 5 and set(shifted["corpus"]) == {"shifted"} and (shifted["n_songs"] <= 2).all()
    rows = thought[thought.part == "analyzability r, shifted corpus"]
    assert len(rows) == 2 * 2 * 5 and (rows["which is"] == "held-out corpus songs").all()
    differences = pd.read_csv(tmp_path / "results/tables/shifted_corpus.csv")
    assert "GM programs: guitar" in set(differences["property"])
    by_property = pd.read_csv(tmp_path / "results/tables/shifted_by_property.csv")
    assert {"drum_kit", "program_bass", "mode", "tempo", "absent"} <= set(by_property["property"])
    # CLAP trained on every train song and one re-rendered variant of each
    variants = pd.read_parquet(tmp_path / "results/timbres/variants.parquet")
    train_songs = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet").query("split == 'train'")["song_id"]
    assert sorted(variants["source_song"]) == sorted(train_songs)
    assert "2 timbre variants of the train songs" in (tmp_path / "logs/clap/train_clap.log").read_text()
    for rule in (*THOUGHT_RULES, "thought_timeline"):
        stage = "analysis" if rule.startswith("thought") else rule.split("_")[1]
        assert (tmp_path / f"benchmarks/{stage}/{rule}.tsv").exists(), rule
    _check_generation(tmp_path)


def _check_generation(tmp_path: Path) -> None:
    """Both systems generated every prompt; Table 1 and the generated-song tables and figures exist."""
    for system in ("base", "musicot"):
        folder = tmp_path / "results/generate" / system
        assert sorted(p.stem for p in folder.glob("*.flac")) == ["p001", "p002", "p003"], system
        timing = pd.read_csv(folder / "timing.csv")
        assert (timing["total_s"] > 0).all() and np.allclose(timing["audio_s"], 1.0)
        info = json.loads((folder / "generation.json").read_text())
        assert info["rtf"]["total"] > 0 and info["hardware"]["cores"] >= 1
    thoughts = pd.read_parquet(tmp_path / "results/generate/musicot/thoughts.parquet")
    assert len(thoughts) == 3 * 2 * 2  # prompts x frames x levels
    assert pd.read_parquet(tmp_path / "results/generate/base/thoughts.parquet").empty
    table1 = pd.read_csv(tmp_path / "results/tables/table1.csv")
    ours = table1[table1["source"] == "this run"].set_index("system")
    assert list(ours.index) == ["base", "musicot"] and ours["FAD"].notna().all()
    assert (ours["MOS"] == "n/a (no ratings)").all() and (ours["CE"] == "n/a (no checkpoint)").all()
    assert {"paper", "paper (quoted, not rerun)"} <= set(table1["source"])
    for name in GENERATED_TABLES:
        assert (tmp_path / f"results/tables/{name}.md").stat().st_size > 0, name
    for name in GENERATED_FIGURES:
        assert (tmp_path / f"results/figures/{name}.png").stat().st_size > 0, name
    # the pages a person opens: every system's songs side by side, and the blinded MOS kit with its key apart
    index = (tmp_path / "results/pages/index.html").read_text()
    assert all(f"audio/{s}/" in index for s in ("base", "musicot"))
    assert list((tmp_path / "results/pages/thoughts/musicot").glob("*.png"))
    kit = (tmp_path / "results/listening/mos/index.html").read_text()
    assert "musicot" not in kit.split('<script id="kit"')[1].split("</script>")[0].replace("musicot-mos", "")
    assert (tmp_path / "results/listening/mos_key.json").exists()
    _check_pages_in_the_browser(tmp_path)
    _check_the_report(tmp_path)
    # one figure deleted and asked for again: exactly its own job reruns
    (tmp_path / "results/figures/rtf_breakdown.pdf").unlink()
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/figures/rtf_breakdown.pdf", config=TINY)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("rule ") == 1 and "rule rtf_breakdown:" in result.stdout
    # `musicot generate`: one song from the trained models, with a reference song's thought
    merged = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, values in TINY.items():
        merged[section] = {**merged.get(section, {}), **values}
    (tmp_path / "merged.yaml").write_text(yaml.safe_dump(merged))
    (tmp_path / "lyrics.txt").write_text("[VERSE]\nhello moon\n[CHORUS]\nla la la\n")
    reference = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")["audio_path"].iloc[0]
    cmd = [sys.executable, "-m", "musicot.cli", "generate", "--prompt", "a happy pop song with piano"]
    cmd += ["--lyrics", "lyrics.txt", "--reference", str(reference), "--out", "song", "--config", "merged.yaml"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads((tmp_path / "song/song.json").read_text())
    assert info["thought_frames"] >= 1 and (tmp_path / "song/song.flac").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "song/song_thought.csv")) == info["thought_frames"]


def _check_pages_in_the_browser(tmp_path: Path) -> None:
    """The pages in headless Chromium: songs play, thoughts draw, links resolve; a kit rated there counts."""
    from tests.listen.browser import audio_states, broken_images, chromium_page, open_file, rate_kit

    pages = tmp_path / "results/pages"
    with chromium_page() as page:
        for name in ("index.html", "base.html", "musicot.html", "references.html"):
            open_file(page, pages / name)
            states = audio_states(page)
            assert states and all(s["error"] is None and s["duration"] > 0 for s in states), (name, states)
            assert broken_images(page) == [], name
            links = page.eval_on_selector_all("a[href]", "nodes => nodes.map(n => n.getAttribute('href'))")
            for link in links:
                assert (pages / link.split("#")[0]).resolve().exists(), (name, link)
        assert page.js_errors == []
        open_file(page, tmp_path / "results/listening/mos/index.html")
        assert all(s["error"] is None for s in audio_states(page))
        (tmp_path / "ratings/mos").mkdir(parents=True)
        rated = rate_kit(page, lambda sample, dim: 1 + len(sample + dim) % 5, "tester", tmp_path / "ratings/mos")
        assert page.js_errors == []
    # the ratings file is a new input of the mos rule: MOS reaches Table 1
    result = snakemake(tmp_path, "--cores", "2", "results/tables", config=TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    ratings = pd.read_csv(tmp_path / "results/metrics/mos_ratings.csv")
    assert set(ratings["file"]) == {str(rated.relative_to(tmp_path))} and len(ratings) == 2 * 3
    table1 = pd.read_csv(tmp_path / "results/tables/table1.csv")
    ours = table1[table1["source"] == "this run"].set_index("system")
    assert ours["MOS"].str.match(r"^\d\.\d+ \[").all(), ours["MOS"]
    assert "1 raters" in (tmp_path / "results/tables/mos.md").read_text().splitlines()[0]


def _check_the_report(tmp_path: Path) -> None:
    """`snakemake --report` holds every table and figure, each with its own caption."""
    result = snakemake(tmp_path, "--report", "results/report.html", config=TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "results/report.html").read_text()
    for name in (*GENERATED_TABLES, "corpus", "prep_quality", "thought", "semantic", "acoustic"):
        assert f"results/tables/{name}.csv" in report, name
    for figure in (tmp_path / "results/figures").glob("*.png"):
        assert f"results/figures/{figure.name}" in report, figure.name
    assert "its caption is the first line" not in report  # no table fell through to the generic caption
    assert "The paper's orderings on FAD" in report and "MOS per system and dimension" in report


def test_ingest_run_records_broken_files(tmp_path):
    src = tmp_path / "music"
    src.mkdir()
    t = np.arange(16000 * 6) / 16000
    sf.write(src / "good.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    (src / "empty.wav").write_bytes(b"")
    (src / "notes.txt").write_text("not audio, not a sidecar")
    config = {"corpus": {"source": "folder", "sample_rate": 16000, "ingest": {"path": str(src)}}}
    result = snakemake(tmp_path, "--cores", "2", "results/corpus/summary.csv", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    tracks = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")
    rejected = pd.read_csv(tmp_path / "results/corpus/rejected.tsv", sep="\t")
    assert len(tracks) == 1
    assert sorted(rejected.reason) == ["empty_file", "not_audio"]
