"""Spectrograms of one song as heard through the acoustic chain: original, VAE reconstruction, re-synthesis.

    python -m musicot.report.spectrograms --audio results/figures/acoustic_spectrograms/original.flac ... \
        --out results/figures/acoustic_spectrograms.pdf results/figures/acoustic_spectrograms.png

One row per file (labelled by its name), log-power spectrograms (matplotlib's specgram) on one colour
scale, so a reader sees what each stage keeps and loses.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

N_FFT, OVERLAP = 1024, 768
DYNAMIC_RANGE_DB = 80.0


def plot_spectrograms(paths: Sequence[Path], out: Sequence[Path], title: str = "") -> Figure:
    """Draw one spectrogram row per audio file into every path of `out`."""
    if not paths:
        raise ValueError("no audio files to draw")
    audio = []
    for path in paths:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio.append((data.mean(axis=1), sr))
    fig = Figure(figsize=(7.0, 1.7 * len(paths) + 0.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(paths), 1, squeeze=False, sharex=True)[:, 0]
    peak = max(10 * np.log10(np.max(np.abs(x)) ** 2 + 1e-12) for x, _ in audio)
    for ax, path, (x, sr) in zip(axes, paths, audio, strict=True):
        *_, image = ax.specgram(
            x + 1e-7,
            NFFT=N_FFT,
            Fs=sr,
            noverlap=OVERLAP,
            cmap="magma",
            vmin=peak - DYNAMIC_RANGE_DB - 40,
            vmax=peak - 40,
        )
        ax.set_ylabel("Hz")
        ax.set_title(Path(path).stem.replace("_", " "), fontsize=9)
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=list(axes), label="dB", fraction=0.03)
    if title:
        fig.suptitle(title, fontsize=10)
    for path in out:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, nargs="+", required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, nargs="+", required=True)
    args = parser.parse_args(argv)
    plot_spectrograms(args.audio, args.out, args.title)


if __name__ == "__main__":
    main()
