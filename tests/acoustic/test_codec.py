"""The frame spaces the DiT models (musicot.acoustic.codec) and the training crops (musicot.acoustic.data):
MelCodec's layout and a pitch-keeping round trip, VaeCodec's padding and shapes, and seeded random crops."""

from __future__ import annotations

import diffusers  # noqa: F401  (imported once at collection, not inside the first VAE test)
import librosa  # noqa: F401
import numpy as np
import pytest

from musicot.acoustic.codec import LOG_FLOOR, MelCodec, VaeCodec, load_codec
from musicot.acoustic.data import random_crops
from musicot.training import step_rng
from tests.acoustic.tiny import acoustic_config, sine, tiny_vae

# a smaller FFT than the default 2048 keeps librosa's NNLS mel inversion under a second; 128 mels keep the
# band around 1 kHz narrow enough for the pitch check
FAST_MEL = {"n_fft": 1024, "hop": 256, "n_mels": 128, "griffin_lim_iters": 16}


def _mel_codec(channels: int = 1, **mel) -> MelCodec:
    cfg = acoustic_config({"channels": channels, "mel": {**FAST_MEL, **mel}})
    return MelCodec(cfg.mel, cfg.sample_rate, cfg.channels)


def _peak_hz(signal: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(frequency of the largest 2048-point FFT bin of the signal's middle, the bin width)."""
    mid = len(signal) // 2
    spectrum = np.abs(np.fft.rfft(signal[mid - 1024 : mid + 1024] * np.hanning(2048)))
    return float(np.argmax(spectrum)) * sample_rate / 2048, sample_rate / 2048


# --- MelCodec ----------------------------------------------------------------------------------------


def test_mel_codec_shapes_for_whole_hops():
    codec = _mel_codec(channels=2)
    assert (codec.dim, codec.hop, codec.sample_rate, codec.channels) == (256, 256, 16000, 2)
    audio = np.stack([sine(300, 16000, 8 * 256), sine(700, 16000, 8 * 256)])
    frames = codec.encode(audio)
    assert frames.shape == (2 * 128, 8) and frames.dtype == np.float32  # (n_mels * channels, T / hop)
    out = codec.decode(frames)
    assert out.shape == (2, 8 * 256) and out.dtype == np.float32  # (channels, T)


def test_default_mel_codec_runs_at_the_vae_latent_rate():
    cfg = acoustic_config()
    codec = load_codec(cfg, None)  # space "mel" by default: no VAE folder needed
    assert isinstance(codec, MelCodec)
    assert codec.dim == cfg.mel.n_mels * cfg.channels == 128
    assert codec.sample_rate / codec.hop == 31.25
    assert codec.encode(np.zeros((1, 7 * 512), np.float32)).shape == (128, 7)


def test_mel_frames_are_channel_major_log_power():
    codec = _mel_codec(channels=2)
    left = sine(1000, 16000, 8 * 256)
    frames = codec.encode(np.stack([left, np.zeros_like(left)]))
    mono = _mel_codec(channels=1).encode(left[None])
    np.testing.assert_allclose(frames[:128], mono, rtol=1e-5, atol=1e-6)  # the first n_mels rows are channel 0
    np.testing.assert_array_equal(frames[128:], np.full((128, 8), np.log(LOG_FLOOR), np.float32))  # silence: floor
    assert frames[:128].max() > np.log(LOG_FLOOR) + 10


def test_mel_rounding_quantises_frames():
    codec = _mel_codec(round_to=0.5)
    frames = codec.encode(sine(440, 16000, 8 * 256)[None])
    np.testing.assert_allclose(frames * 2, np.round(frames * 2), atol=1e-4)
    assert len(np.unique(frames)) > 3


def test_mel_round_trip_keeps_the_pitch_and_the_channel():
    codec = _mel_codec(channels=2)
    n = 16 * 256
    tone = sine(1000, 16000, n)
    out = codec.decode(codec.encode(np.stack([tone, np.zeros_like(tone)])))
    peak, bin_hz = _peak_hz(out[0], 16000)
    assert abs(peak - 1000.0) <= 2 * bin_hz, peak
    rms = np.sqrt(np.mean(out**2, axis=1))
    assert rms[0] > 0.1 and rms[1] < 1e-2 * rms[0]  # the silent channel stays silent (-40 dB)


# --- VaeCodec ----------------------------------------------------------------------------------------


def test_vae_codec_pads_to_whole_hops():
    import torch

    vae = tiny_vae()
    codec = VaeCodec(vae)
    assert (codec.name, codec.dim, codec.hop, codec.channels, codec.sample_rate) == ("vae", 2, 4, 1, 16000)
    audio = sine(500, 16000, 401)[None]
    frames = codec.encode(audio)
    assert frames.shape == (2, 101) and frames.dtype == np.float32  # 401 samples padded to 404
    padded = torch.from_numpy(np.pad(audio, ((0, 0), (0, 3))))[None]
    with torch.no_grad():
        mean = vae.encode(padded).latent_dist.mean[0].numpy()
    np.testing.assert_array_equal(frames, mean)  # the posterior mean, not a sample
    np.testing.assert_array_equal(codec.encode(audio), frames)
    assert codec.decode(frames).shape == (1, 404)
    assert codec.encode(sine(500, 16000, 400)[None]).shape == (2, 100)  # whole hops: no padding


def test_load_codec_reads_the_vae_folder(tmp_path):
    cfg = acoustic_config({"space": "vae"})
    with pytest.raises(ValueError, match="needs the VAE folder"):
        load_codec(cfg, None)
    tiny_vae().save_pretrained(str(tmp_path))
    codec = load_codec(cfg, tmp_path)
    assert isinstance(codec, VaeCodec) and codec.dim == 2 and not codec.vae.training


# --- random crops ------------------------------------------------------------------------------------


def _songs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(2, n)).astype(np.float32) for n in (1000, 37, 523)]


def test_random_crops_are_a_function_of_the_seed():
    songs = _songs()
    a = random_crops(songs, 64, 16, step_rng(3, 11, 5), hop=8)
    b = random_crops(songs, 64, 16, step_rng(3, 11, 5), hop=8)
    c = random_crops(songs, 64, 16, step_rng(3, 11, 6), hop=8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not (np.array_equal(a[1], c[1]) and np.array_equal(a[2], c[2]))


def test_random_crops_start_on_hops_and_copy_the_song():
    songs = _songs()
    x, which, starts = random_crops(songs, 64, 40, np.random.default_rng(1), hop=8)
    assert x.shape == (40, 2, 64) and x.dtype == np.float32
    assert set(which.tolist()) == {0, 1, 2}
    assert (starts % 8 == 0).all()
    for crop, i, s in zip(x, which, starts, strict=True):
        song = songs[i]
        if song.shape[1] >= 64:
            assert s + 64 <= song.shape[1]
            np.testing.assert_array_equal(crop, song[:, s : s + 64])
    long_starts = starts[which == 0]
    assert len(set(long_starts.tolist())) > 3  # the long song is cropped at many places


def test_short_songs_are_zero_padded():
    songs = _songs()
    x, which, starts = random_crops(songs, 64, 40, np.random.default_rng(2), hop=8)
    short = which == 1
    assert short.any()
    assert (starts[short] == 0).all()
    for crop in x[short]:
        np.testing.assert_array_equal(crop[:, :37], songs[1])
        np.testing.assert_array_equal(crop[:, 37:], np.zeros((2, 27), np.float32))
