"""Analyzability of generated songs (the paper's section 5.3): does the drawn thought say what is heard?

    python -m musicot.metrics.analyzability --config CFG --songs results/generate/musicot \
        --separator results/prep/separator --rvq results/rvq --clap-embeddings results/clap/embeddings \
        --tracks results/corpus/tracks.parquet --out results/metrics

Each generated song is separated with the preprocessing separator (the paper: htdemucs_6s); its
thought frame k covers [10k, 10k + 10) s, and where the rendered audio covers a frame, each stem's RMS
over that span is that frame's volume. The frame's de-quantized thought is compared by cosine with each
anchor's text embedding, and Pearson r is taken per anchor over all (song, frame) pairs (pooled) and
per song; a (song, stem) whose mean volume is under `analysis.min_mean_volume` is left out, as the
paper leaves out stems under 1e-2 (`musicot.analysis.analyzability`). An r resting on fewer than
`evaluate.min_songs` songs is marked.

Generated songs are mono, the corpus stereo: the separator's SDR on the validation songs' stereo
mixes and on their mono downmixes goes beside the r (`separator_mono.csv`), so a drop in r can be told
apart from the separator failing on mono input.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.analysis.analyzability import RESULT_COLUMNS, analyzability, anchor_similarity
from musicot.audio import rms
from musicot.config import load_config
from musicot.prep.separate import SongError

log = logging.getLogger("musicot.metrics")

OUTPUT_COLUMNS = [*RESULT_COLUMNS, "few_songs"]
TABLE_FILE, WINDOWS_FILE = "analyzability.csv", "analyzability_windows.parquet"
VOLUME_FILE, MONO_FILE, FRAMES_FILE = "generated_volume.parquet", "separator_mono.csv", "thought_frames.parquet"
REJECTED_FILE = "analyzability_rejected.tsv"


def song_thoughts(thoughts: pd.DataFrame) -> dict[str, np.ndarray]:
    """{prompt_id: (M, L) codes} from thoughts.parquet (prompt_id, frame, level, code)."""
    out = {}
    for prompt_id, group in thoughts.groupby("prompt_id", sort=True):
        wide = group.pivot(index="frame", columns="level", values="code").sort_index()
        out[str(prompt_id)] = wide[sorted(wide.columns)].to_numpy(dtype=np.int64)
    return out


def frame_spans(n_frames: int, window_s: float, duration_s: float) -> list[tuple[int, float, float]]:
    """(frame, start, end) of the thought frames the audio covers (end cut to the audio)."""
    return [
        (k, k * window_s, min((k + 1) * window_s, duration_s)) for k in range(n_frames) if k * window_s < duration_s
    ]


def stem_volumes(stems: Mapping[str, np.ndarray], sr: int, spans: Sequence[tuple[int, float, float]]) -> list[dict]:
    """RMS of each (samples,) stem over each span: rows frame, stem, rms."""
    return [
        dict(window=k, stem=stem, rms=rms(audio[int(start * sr) : int(end * sr)]))
        for stem, audio in stems.items()
        for k, start, end in spans
    ]


def fine_volume(stems: Mapping[str, np.ndarray], sr: int, hop_s: float) -> list[dict]:
    """RMS per `hop_s` step of each stem (the timeline figure's curves)."""
    rows = []
    for stem, audio in stems.items():
        hop = max(1, round(hop_s * sr))
        for i in range(0, len(audio), hop):
            rows.append(dict(stem=stem, start=i / sr, end=min(i + hop, len(audio)) / sr, rms=rms(audio[i : i + hop])))
    return rows


def generated_analyzability(
    thoughts: Mapping[str, np.ndarray],
    volumes: pd.DataFrame,
    similarity: Mapping[str, np.ndarray],
    durations: Mapping[str, float],
    window_s: float,
    anchors: Sequence[str],
    min_mean_volume: float,
    min_songs: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(r per anchor, per-window table) from each song's thought, its frames' anchor similarities
    (`similarity[prompt_id]`: (M, A)) and its stems' volume per frame (`volumes`: song_id, window, stem, rms)."""
    windows, sims = [], []
    for prompt_id, thought in thoughts.items():
        for k, start, end in frame_spans(len(thought), window_s, durations[prompt_id]):
            windows.append(dict(song_id=prompt_id, window=k, start=start, end=end))
            sims.append(similarity[prompt_id][k])
    windows_df = pd.DataFrame(windows, columns=["song_id", "window", "start", "end"])
    sim = np.asarray(sims, dtype=np.float64).reshape(len(windows_df), len(anchors))
    table = analyzability(windows_df, sim, volumes, anchors, min_mean_volume, label="separated")
    table["few_songs"] = table["n_songs"] < min_songs
    per_window = windows_df.copy()
    for a, anchor in enumerate(anchors):
        per_window[f"sim_{anchor}"] = sim[:, a]
        vol = volumes[volumes["stem"] == anchor]
        kept = vol.groupby("song_id")["rms"].transform("mean") >= min_mean_volume
        merged = per_window[["song_id", "window"]].merge(vol[kept], on=["song_id", "window"], how="left")
        per_window[f"volume_{anchor}"] = merged["rms"].to_numpy()
    return table[OUTPUT_COLUMNS], per_window.rename(columns={"song_id": "prompt_id", "window": "frame"})


def separate_file(model, path: Path, cfg) -> tuple[dict[str, np.ndarray], int, float]:
    """({stem: mono (samples,)} at the separator's rate, that rate, the file's duration in seconds)."""
    from musicot.audio import read_audio
    from musicot.prep.separate import separate_mix

    mix, sr = read_audio(path)
    random.seed(zlib.crc32(Path(path).stem.encode()))  # demucs' shifts draw offsets: fixed per song
    stems = separate_mix(model, mix, sr, cfg.shifts, cfg.overlap)
    stems_mono = {name: stems[i].mean(axis=1) for i, name in enumerate(model.sources)}
    return stems_mono, int(model.samplerate), len(mix) / sr


def mono_sdr(model, tracks: pd.DataFrame, cfg, stems: Sequence[str], seconds: float) -> pd.DataFrame:
    """SDR per stem of the separator on each song's stereo mix and on its mono downmix (duplicated to stereo),
    over the first `seconds` of each song."""
    from musicot.audio import read_audio
    from musicot.prep.separate import read_at, separate_mix
    from musicot.prep.separate_score import SILENT_RMS, sdr

    rows = []
    for song in tracks.itertuples():
        mix, sr = read_audio(song.audio_path)
        mix = mix[: round(seconds * sr)]
        mono = np.repeat(np.asarray(mix, dtype=np.float32).reshape(len(mix), -1).mean(axis=1, keepdims=True), 2, axis=1)
        for version, audio in (("stereo", mix), ("mono", mono)):
            random.seed(zlib.crc32(song.song_id.encode()))
            estimate = separate_mix(model, audio, sr, cfg.shifts, cfg.overlap)
            for stem in stems:
                truth_path = Path(song.stems_dir) / f"{stem}.flac" if song.stems_dir else None
                if stem not in model.sources or truth_path is None or not truth_path.is_file():
                    continue
                truth = read_at(truth_path, int(model.samplerate))
                est = estimate[model.sources.index(stem)][: len(truth)]
                truth = truth[: len(est)]
                if rms(truth) < SILENT_RMS:
                    continue
                rows.append(dict(song_id=song.song_id, version=version, stem=stem, sdr=sdr(truth, est)))
    per_song = pd.DataFrame(rows, columns=["song_id", "version", "stem", "sdr"])
    if per_song.empty:
        return pd.DataFrame(columns=["stem", "sdr_stereo", "sdr_mono", "n_songs"])
    wide = per_song.pivot_table(index="stem", columns="version", values="sdr", aggfunc="mean")
    counts = per_song[per_song["version"] == "mono"].groupby("stem")["song_id"].nunique()
    out = pd.DataFrame(
        {"stem": wide.index, "sdr_stereo": wide["stereo"].to_numpy(), "sdr_mono": wide["mono"].to_numpy()}
    )
    out["n_songs"] = out["stem"].map(counts).fillna(0).astype(int)
    return out


def run(config: Mapping, args: argparse.Namespace) -> None:
    from musicot.analysis.thought import anchor_embeddings, dequantize
    from musicot.prep.common import load_tracks
    from musicot.prep.separate import SeparationConfig, load_separator

    acfg, ecfg = config["analysis"], config["evaluate"]
    anchors = list(acfg["anchors"])
    sep_cfg = SeparationConfig.from_config(config)
    # A public checkpoint folder needs its model name (the config's); one trained here names itself.
    model = load_separator(sep_cfg if sep_cfg.checkpoint else args.separator).eval()
    generation = json.loads((args.songs / "generation.json").read_text())
    thoughts = song_thoughts(pd.read_parquet(args.songs / "thoughts.parquet"))
    if not thoughts:
        raise ValueError(f"{args.songs} holds no thoughts: analyzability needs a system with a musical thought")
    window_s = float(config["clap"]["window_s"])
    anchor_text = anchor_embeddings(args.clap_embeddings, anchors)
    volumes, fine, durations, similarity, frames, rejected = [], [], {}, {}, [], []
    for prompt_id, thought in list(thoughts.items()):
        path = args.songs / f"{prompt_id}.flac"
        try:
            stems, sr, durations[prompt_id] = separate_file(model, path, sep_cfg)
        except SongError as error:  # one song the separator cannot take is a counted rejection, not a crash
            log.warning("%s: not separated (%s: %s)", prompt_id, error.reason, error.detail)
            rejected.append(dict(prompt_id=prompt_id, reason=error.reason, detail=error.detail))
            del thoughts[prompt_id]
            continue
        stems = {s: a for s, a in stems.items() if s in anchors}
        spans = frame_spans(len(thought), window_s, durations[prompt_id])
        volumes += [dict(song_id=prompt_id, **row) for row in stem_volumes(stems, sr, spans)]
        fine += [
            dict(prompt_id=prompt_id, **row) for row in fine_volume(stems, sr, float(config["corpus"]["volume_hop_s"]))
        ]
        similarity[prompt_id] = anchor_similarity(dequantize(args.rvq, thought), anchor_text)
        frames += [
            dict(
                prompt_id=prompt_id, frame=k, **{f"sim_{a}": similarity[prompt_id][k, i] for i, a in enumerate(anchors)}
            )
            for k in range(len(thought))
        ]
    if not thoughts:
        raise ValueError(f"no song of {args.songs} could be separated: {rejected}")
    table, per_window = generated_analyzability(
        thoughts,
        pd.DataFrame(volumes),
        similarity,
        durations,
        window_s,
        anchors,
        acfg["min_mean_volume"],
        ecfg["min_songs"],
    )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    table["n_rejected"] = len(rejected)  # songs the separator refused (listed in REJECTED_FILE)
    table.to_csv(out / TABLE_FILE, index=False)
    pd.DataFrame(rejected, columns=["prompt_id", "reason", "detail"]).to_csv(out / REJECTED_FILE, sep="\t", index=False)
    per_window.to_parquet(out / WINDOWS_FILE, index=False)
    pd.DataFrame(fine).to_parquet(out / VOLUME_FILE, index=False)
    pd.DataFrame(frames).to_parquet(out / FRAMES_FILE, index=False)
    tracks = load_tracks(args.tracks)
    valid = tracks[(tracks["split"] == "valid") & (tracks["stems_dir"].fillna("") != "")]
    mono_sdr(model, valid, sep_cfg, anchors, float(ecfg["mono_sdr_s"])).to_csv(out / MONO_FILE, index=False)
    log.info("generated-song analyzability (%s, %d songs):\n%s", generation["system"], len(thoughts), table.round(3))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--songs", type=Path, required=True, help="results/generate/<system> (a system with a thought)")
    parser.add_argument("--separator", type=Path, required=True, help="separator folder (trained here or a checkpoint)")
    parser.add_argument("--rvq", type=Path, required=True, help="results/rvq")
    parser.add_argument("--clap-embeddings", type=Path, required=True, help="results/clap/embeddings (anchor texts)")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet (mono-input SDR)")
    parser.add_argument("--out", type=Path, required=True, help="results/metrics")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    run(load_config(args.config), args)


if __name__ == "__main__":
    main()
