"""musicot.clap: offline construction, shapes, save/load, a few training steps, data windows, the torchvision shim."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from musicot.clap import compat
from musicot.clap import data as D
from musicot.clap import model as M

SR = 16000
WINDOW_S = 2.0  # short windows keep the tiny preset fast in tests


@pytest.fixture(scope="module")
def tiny() -> M.ClapModel:
    torch.manual_seed(0)
    return M.build(M.preset_spec("tiny", window_s=WINDOW_S))


def _tones(n: int, seconds: float = WINDOW_S, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """n synthetic windows cycling through four kinds (tone, noise bursts, both, low hum), captioned."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    waves, texts = [], []
    for i in range(n):
        tone = 0.3 * np.sin(2 * np.pi * (440 + 20 * i) * t)
        bursts = 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0.5)
        hum = 0.5 * np.sin(2 * np.pi * 55 * t)
        kind = i % 4
        waves.append([tone, bursts, tone + bursts, hum][kind])
        texts.append(["piano", "drums", "drums and piano", "bass"][kind] + ".")
    return np.stack(waves).astype(np.float32), texts


def test_shim_frozen_batchnorm_matches_batchnorm_eval():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(6).eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3)
    frozen = compat.FrozenBatchNorm2d(6)
    frozen.load_state_dict(bn.state_dict())  # num_batches_tracked is dropped, like torchvision's
    assert sorted(frozen.state_dict()) == ["bias", "running_mean", "running_var", "weight"]
    x = torch.randn(3, 6, 5, 7)
    torch.testing.assert_close(frozen(x), bn(x), rtol=1e-5, atol=1e-5)


def test_shim_transforms_raise_and_clap_module_imports():
    cm = compat.clap_module()
    assert hasattr(cm, "create_model") and hasattr(cm, "ClipLoss")
    import torchvision  # the real one or our shim, whichever clap_module got

    if getattr(torchvision, compat.SHIM_MARK, False):
        from torchvision.ops.misc import FrozenBatchNorm2d
        from torchvision.transforms import Resize

        assert FrozenBatchNorm2d is compat.FrozenBatchNorm2d
        with pytest.raises(NotImplementedError):
            Resize(224)(None)
        import transformers.utils.import_utils as iu

        assert not iu._is_package_available("torchvision", return_version=True)[0]


def test_tiny_forward_shapes(tiny):
    waves, texts = _tones(3)
    a, t, am, tm, sa, st = tiny(torch.from_numpy(waves), tiny.tokenize(texts))
    assert a.shape == t.shape == am.shape == tm.shape == (3, 128)
    assert sa.ndim == st.ndim == 0
    audio = tiny.embed_audio(waves)
    text = tiny.embed_text(["vocals", "bass", "drums"])
    assert audio.shape == (3, 128) and text.shape == (3, 128) and audio.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, rtol=1e-5)


def test_offline_construction(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = M.build(M.preset_spec("tiny", window_s=WINDOW_S))
    assert model.embed_text(["guitar"]).shape == (1, 128)


def test_save_load_identical(tiny, tmp_path):
    waves, _ = _tones(2)
    texts = ["bass and drums. funk, dark.", "piano"]
    M.save(tiny, tmp_path / "m")
    back = M.load(tmp_path / "m")
    assert back.spec == tiny.spec
    np.testing.assert_array_equal(back.embed_audio(waves), tiny.embed_audio(waves))
    np.testing.assert_array_equal(back.embed_text(texts), tiny.embed_text(texts))


def test_training_steps_lower_loss(tmp_path):
    from musicot.clap.train import clip_loss_fn
    from musicot.training import LoopConfig, train_loop

    torch.manual_seed(0)
    model = M.build(M.preset_spec("tiny", window_s=WINDOW_S))
    waves, texts = _tones(4)
    batch = (torch.from_numpy(waves), model.tokenize(texts))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cfg = LoopConfig(8, 100, 100, 4, 0)
    history = train_loop(model, opt, lambda step: batch, clip_loss_fn(), cfg, tmp_path / "state")
    (_, first), *_, (_, last) = history["train"]  # mean loss of steps 1-4 and of steps 5-8
    assert last < first - 0.1, history["train"]


def test_windows_and_captions():
    np.testing.assert_allclose(D.window_starts(37.0, 10.0, 5.0), [0, 5, 10, 15, 20, 25])
    np.testing.assert_allclose(D.window_starts(6.0, 10.0, 5.0), [0])
    assert (
        D.caption({"drums": True, "bass": True, "piano": True}, "Funk", "dark") == "bass, drums and piano. funk, dark."
    )
    assert D.caption({"vocals": True}, "", "unknown") == "vocals."
    assert D.caption({"vocals": False, "other": True}) == "music."  # absent stems are never named
    frames = []
    for stem in D.STEMS:
        for f in range(40):  # 20 s of 0.5 s frames: drums only in the second half, piano throughout
            rms = {"drums": 0.05 if f >= 20 else 0.0, "piano": 0.03}.get(stem, 0.0)
            frames.append(dict(song_id="s1", stem=stem, frame=f, start=f * 0.5, end=f * 0.5 + 0.5, rms=rms))
    truths = D.song_truths(pd.DataFrame(frames))
    tracks = pd.DataFrame([dict(song_id="s1", split="valid", duration_s=20.0, genre="jazz", mood="calm")])
    w = D.build_windows(tracks, truths, 10.0, 5.0, 0.01)
    assert list(w["start"]) == [0.0, 5.0, 10.0]
    assert list(w["active_drums"]) == [False, True, True]  # 5-15 s: mean 0.025 > 0.01
    assert w["caption"].iloc[0] == "piano. jazz, calm."
    # songs without stem truth (own music): the sidecar caption, else genre and mood, else "music."
    own = pd.DataFrame(
        [
            dict(song_id="a", split="train", duration_s=10.0, caption="a sad ballad", genre="pop", mood="sad"),
            dict(song_id="b", split="train", duration_s=10.0, caption="", genre="Rock", mood="unknown"),
            dict(song_id="c", split="train", duration_s=10.0, caption="", genre="", mood=""),
        ]
    )
    assert list(D.build_windows(own, {}, 10.0, 5.0, 0.01)["caption"]) == ["a sad ballad", "rock.", "music."]


def _stem_song(seconds: float = 12.0):
    """One song whose stems are distinct constant tones (bass and drums silent in the first half), plus truth."""
    t = np.arange(int(seconds * SR)) / SR
    level = {"vocals": 0.1, "bass": 0.2, "drums": 0.3, "guitar": 0.0, "piano": 0.4, "other": 0.05}
    stems = {}
    for k, (stem, a) in enumerate(level.items()):
        x = a * np.ones_like(t, dtype=np.float32) * (1 + 0.01 * k)  # DC levels: sums are exact to check
        if stem in ("bass", "drums"):
            x[t < seconds / 2] = 0
        stems[stem] = x.astype(np.float32)
    frames = []
    for stem, x in stems.items():
        for f in range(int(seconds / 0.5)):
            seg = x[int(f * 0.5 * SR) : int((f + 1) * 0.5 * SR)]
            frames.append(dict(song_id="s", stem=stem, frame=f, start=f * 0.5, end=f * 0.5 + 0.5, rms=float(seg[0])))
    truths = D.song_truths(pd.DataFrame(frames))
    tracks = pd.DataFrame([dict(song_id="s", split="train", duration_s=seconds, genre="rock", mood="happy")])
    return stems, truths, tracks


def test_train_windows_remix_and_phrases_stay_true():
    stems, truths, tracks = _stem_song()
    windows = D.build_windows(tracks, truths, 4.0, 2.0, 0.01)
    mix = sum(stems.values())
    anchors = dict(vocals=0.1, bass=0.2 * 1.01, drums=0.3 * 1.02, piano=0.4 * 1.04)  # DC level of each stem
    pool = D.TrainWindows(windows, {"s": mix}, truths, SR, 4.0, 0.01, stems={"s": stems}, remix_prob=1.0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        i = int(rng.integers(len(pool)))
        wave, text, labels = pool.item(i, rng)
        named = [s for s in D.ANCHORS if s in text.split(".")[0]]
        assert named and "guitar" not in named  # silent stems are never named
        np.testing.assert_array_equal(labels, [float(s in named) for s in D.ANCHORS])
        # the wave is exactly the named stems (+ maybe "other"): the caption is true of the audio.
        # Its last sample holds every active stem at its level (bass and drums start mid-song).
        level = sum(anchors[s] for s in named)
        assert np.isclose(wave[-1], level, atol=1e-5) or np.isclose(wave[-1], level + 0.05 * 1.05, atol=1e-5)
        seen.add(len(named))
    assert {1, 2} <= seen  # remixes give single stems and subsets
    phrases = D.TrainWindows(windows, {"s": mix}, truths, SR, 4.0, 0.01, crop_s=2.0, phrase_prob=1.0)
    for i in range(len(phrases)):
        wave, text, labels = phrases.item(i, rng)
        assert len(wave) == 2 * SR and text in D.ANCHORS and labels[D.ANCHORS.index(text)] == 1.0
    wave, text, labels = phrases.item(0)  # no rng: the window as listed
    assert len(wave) == 4 * SR and text == windows["caption"].iloc[0]


def test_loudness_labels_follow_level_and_playing_time():
    stems, truths, tracks = _stem_song()  # bass and drums play only from 6 s on
    ref = D.loudness_reference(truths, 0.01, 1.0)  # quantile 1: each stem's loudest playing frame
    assert ref["piano"] == pytest.approx(0.4 * 1.04) and ref["guitar"] == 0.02  # guitar never plays
    windows = D.build_windows(tracks, truths, 4.0, 2.0, 0.01)
    assert windows["rms_bass"].iloc[1] == pytest.approx(0.0)  # 2-6 s
    assert windows["rms_bass"].iloc[2] == pytest.approx(0.2 * 1.01 / 2)  # 4-8 s: half of it playing
    half = {s: 0.2 for s in D.ANCHORS}  # full level 0.2: vocals (0.1) sit at 1/2, the others clip at 1
    pool = D.TrainWindows(windows, {"s": sum(stems.values())}, truths, SR, 4.0, 0.01, loudness_ref=half)
    rng = np.random.default_rng(0)
    _, _, labels = pool.item(2, rng)
    np.testing.assert_allclose(labels, [0.5, 0.5, 0.5, 0.0, 1.0], atol=1e-6)  # bass, drums: half the span
    _, _, labels = pool.item(0, rng)
    np.testing.assert_allclose(labels, [0.5, 0.0, 0.0, 0.0, 1.0], atol=1e-6)
    gained = D.TrainWindows(windows, {"s": sum(stems.values())}, truths, SR, 4.0, 0.01, gain_db=6.0, loudness_ref=half)
    for i in range(len(gained)):  # a louder or quieter copy carries a louder or quieter vocal label
        wave, _, labels = gained.item(i, rng)
        gain = wave[-1] / sum(stems.values())[int(windows["start"].iloc[i] * SR) + 4 * SR - 1]
        assert labels[0] == pytest.approx(min(1.0, 0.5 * gain), rel=1e-4)
    mix = {"s": sum(stems.values())}
    remixed = D.TrainWindows(windows, mix, truths, SR, 4.0, 0.01, stems={"s": stems}, remix_prob=1.0, loudness_ref=half)
    for _ in range(20):
        _, text, labels = remixed.item(3, rng)
        named = [s for s in D.ANCHORS if s in text.split(".")[0]]
        expected = {"vocals": 0.5, "bass": 1.0, "drums": 1.0, "guitar": 0.0, "piano": 1.0}
        np.testing.assert_allclose(labels, [expected[s] if s in named else 0.0 for s in D.ANCHORS], atol=1e-6)


LEVELS = {"vocals": 0.1, "bass": 0.2 * 1.01, "drums": 0.3 * 1.02, "piano": 0.4 * 1.04, "other": 0.05 * 1.05}


def test_remix_stem_gains_move_each_label_with_its_stem():
    stems, truths, tracks = _stem_song()
    windows = D.build_windows(tracks, truths, 4.0, 2.0, 0.01)
    full = {s: 1.0 for s in D.ANCHORS}  # full level 1: labels are the level x gain, never clipped (max 0.83)
    pool = D.TrainWindows(
        windows, {"s": sum(stems.values())}, truths, SR, 4.0, 0.01,
        stems={"s": stems}, remix_prob=1.0, loudness_ref=full, stem_gain_db=6.0,
    )  # fmt: skip
    rng = np.random.default_rng(1)
    vocal_labels = []
    for _ in range(40):
        wave, text, labels = pool.item(3, rng)  # 6-10 s: every stem but guitar plays
        named = [s for s in D.ANCHORS if s in text.split(".")[0]]
        assert set(np.flatnonzero(labels)) == {D.ANCHORS.index(s) for s in named}
        for s in named:  # each label is its stem's level x a gain within +-6 dB
            assert LEVELS[s] / 2 - 1e-6 <= labels[D.ANCHORS.index(s)] <= 2 * LEVELS[s] + 1e-6
        # DC stems: the wave is the sum of the labelled stems (+ perhaps "other", at its own gain)
        rest = wave[-1] - labels.sum()
        assert abs(rest) < 1e-5 or LEVELS["other"] / 2 - 1e-5 <= rest <= 2 * LEVELS["other"] + 1e-5
        if "vocals" in named:
            vocal_labels.append(labels[0])
    assert len(set(np.round(vocal_labels, 5))) > 5  # the gain is drawn per remix


def test_cross_song_remix_is_labelled_from_its_source_song():
    stems, truths, tracks = _stem_song()
    half = {k: v * 0.5 for k, v in stems.items()}  # song t: the same stems at half level
    frames = [
        dict(song_id="t", stem=k, frame=f, start=f * 0.5, end=f * 0.5 + 0.5, rms=float(x[int((f + 0.5) * 0.5 * SR)]))
        for k, x in half.items()
        for f in range(24)
    ]
    truths = {**truths, **D.song_truths(pd.DataFrame(frames))}
    windows = D.build_windows(tracks, truths, 4.0, 2.0, 0.01)
    full = {s: 1.0 for s in D.ANCHORS}
    pool = D.TrainWindows(
        windows, {"s": sum(stems.values()), "t": sum(half.values())}, truths, SR, 4.0, 0.01,
        stems={"s": stems, "t": half}, remix_prob=1.0, loudness_ref=full, cross_song_prob=1.0,
    )  # fmt: skip
    rng = np.random.default_rng(2)
    sources = set()
    for _ in range(40):
        _, text, labels = pool.item(1, rng)  # 2-6 s of song s: vocals, piano (and other) play
        named = [s for s in D.ANCHORS if s in text.split(".")[0]]
        drawn = set()
        for s in named:  # every stem comes from a random train song (s or t) and is labelled from it
            label = labels[D.ANCHORS.index(s)]
            assert label == pytest.approx(LEVELS[s], rel=1e-4) or label == pytest.approx(LEVELS[s] / 2, rel=1e-4)
            drawn.add(round(label / LEVELS[s], 3))
        if 0.5 in drawn:  # a stem of song t: the window's genre and mood no longer describe the remix
            assert text.split(".")[1] == ""
        sources |= drawn
    assert sources == {0.5, 1.0}


def test_random_eq_keeps_the_level_and_changes_the_timbre():
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(SR).astype(np.float32)
    shaped = D.random_eq(wave, SR, 9.0, rng)
    assert np.sqrt(np.mean(shaped**2)) == pytest.approx(np.sqrt(np.mean(wave**2)), rel=1e-4)
    bands = [np.abs(np.fft.rfft(x))[: SR // 2].reshape(8, -1).mean(axis=1) for x in (wave, shaped)]
    ratio_db = 20 * np.log10(bands[1] / bands[0])
    assert ratio_db.max() - ratio_db.min() > 3  # a curve over frequency, not a gain


def test_volume_r_tracks_stem_volume():
    from musicot.clap.train import volume_r

    windows = pd.DataFrame({"rms_vocals": [0.01, 0.02, 0.04, np.nan], "rms_bass": [0.03] * 4})
    r = volume_r({"vocals": np.array([1.0, 2.0, 4.0, 9.0]), "bass": np.arange(4.0)}, windows)
    assert r["r_vocals"] == pytest.approx(1.0)  # the window without truth is left out
    assert np.isnan(r["r_bass"])  # constant volume: undefined
    assert volume_r({"vocals": np.array([-1.0, -2.0, -4.0, 5.0])}, windows, "x_")["x_vocals"] == pytest.approx(-1.0)


def test_tag_and_locked_stages_lower_their_losses(tmp_path):
    from musicot.clap.train import locked_clip_loss_fn, tag_loss_fn
    from musicot.training import LoopConfig, train_loop

    torch.manual_seed(0)
    model = M.build(M.preset_spec("tiny", window_s=WINDOW_S))
    model.audio_regularize = False
    waves, texts = _tones(4)
    labels = torch.tensor([[0, 0, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 1, 0, 1], [0, 1, 0, 0, 0]], dtype=torch.float32)
    labels[0, 0] = float("nan")  # unknown labels are skipped
    opt = torch.optim.AdamW(model.clap.audio_branch.parameters(), lr=1e-3)
    history = train_loop(
        model,
        opt,
        lambda s: (torch.from_numpy(waves), labels),
        tag_loss_fn,
        LoopConfig(8, 100, 100, 4, 0),
        tmp_path / "a",
    )
    (_, first), *_, (_, last) = history["train"]
    assert last < first, history["train"]
    with torch.no_grad():
        feats = model.tower_outputs(torch.from_numpy(waves))["embedding"]
    tower = {k: v.clone() for k, v in model.clap.audio_branch.state_dict().items()}
    params = [p for n, p in model.clap.named_parameters() if not n.startswith("audio_branch.")]
    opt = torch.optim.AdamW(params, lr=1e-3)
    batch = (feats, model.tokenize(texts))
    history = train_loop(
        model, opt, lambda s: batch, locked_clip_loss_fn(), LoopConfig(8, 100, 100, 4, 0), tmp_path / "b"
    )
    (_, first), *_, (_, last) = history["train"]
    assert last < first - 0.1, history["train"]
    for k, v in model.clap.audio_branch.state_dict().items():  # the locked tower did not move
        torch.testing.assert_close(v, tower[k])


def test_audio_regularize_flag_only_silences_the_tower_itself(tiny):
    tiny.audio_regularize = False
    tiny.train()
    assert not tiny.clap.audio_branch.training and tiny.clap.audio_branch.bn0.training
    assert tiny.clap.text_branch.training
    tiny.audio_regularize = True
    tiny.train()
    assert tiny.clap.audio_branch.training
    tiny.eval()


def test_metrics_perfect_and_tag_scorer(tiny):
    from musicot.clap.train import anchor_auc, retrieval_metrics
    from musicot.prep.tags import TagScorer

    emb = np.eye(4, dtype=np.float32)
    m = retrieval_metrics(emb[:3], ["a", "b", "c"], {"a": emb[0], "b": emb[1], "c": emb[2]})
    assert m["recall@1"] == 1.0 and m["n_captions"] == 3
    windows = pd.DataFrame({"active_vocals": [True, False, True, False]})
    auc = anchor_auc({"vocals": np.array([[1.0], [0.0], [0.9], [0.1]]) @ np.array([1.0])}, windows)
    assert auc["auc_vocals"] == 1.0

    scorer: TagScorer = M.ClapTagScorer(tiny, window_s=WINDOW_S, hop_s=1.0)  # structural match (mypy)
    stereo = np.random.default_rng(0).standard_normal((44100 * 3, 2)).astype(np.float32) * 0.1
    scores = scorer.score(stereo, 44100, ["rock", "jazz"])
    assert set(scores) == {"rock", "jazz"} and all(-1 <= v <= 1 for v in scores.values())


def test_paper_family_load_pretrained(tmp_path):
    """The paper path (HTSAT + roberta, laion checkpoint format) on a small random model of the same family.

    HTSAT-base + roberta-base is ~200 M parameters (tens of seconds to build on CPU, ~0.8 GB), so the
    test uses HTSAT-tiny and a 1-layer roberta (hidden 768, which laion's projection hard-codes).
    """
    from transformers import RobertaConfig

    roberta = RobertaConfig(
        vocab_size=64,
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=128,
        max_position_embeddings=80,
    )
    base = M.preset_spec("paper")
    cfg = {**base.model_config, "embed_dim": 768}
    cfg["audio_cfg"] = {**cfg["audio_cfg"], "model_name": "tiny"}
    spec = M.ClapSpec("paper", cfg, "roberta")

    class Tok:
        def __call__(self, texts, max_length, **kwargs):
            ids = torch.ones(len(texts), max_length, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, text in enumerate(texts):
                codes = [0, *[4 + ord(c) % 60 for c in text][: max_length - 2], 2]
                ids[i, : len(codes)] = torch.tensor(codes)
                mask[i, : len(codes)] = 1
            return {"input_ids": ids, "attention_mask": mask}

    torch.manual_seed(0)
    src = M.build(spec, roberta_config=roberta, tokenizer=Tok())
    state = {"module." + k: v for k, v in src.clap.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(80)[None]
    torch.save({"epoch": 15, "state_dict": state}, tmp_path / "ckpt.pt")
    torch.manual_seed(1)
    loaded = M.load_pretrained(tmp_path / "ckpt.pt", spec, roberta_config=roberta, tokenizer=Tok())
    wave = np.random.default_rng(0).standard_normal((1, 480000)).astype(np.float32) * 0.1
    audio = loaded.embed_audio(wave)
    assert audio.shape == (1, 512)
    np.testing.assert_allclose(audio, src.eval().embed_audio(wave), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.embed_text(["drums"]), src.embed_text(["drums"]), rtol=1e-5, atol=1e-6)


def test_paper_needs_local_roberta():
    with pytest.raises(FileNotFoundError):
        M.build(M.preset_spec("paper", roberta_dir=str(Path("/nonexistent/roberta"))))


def test_crop_shorter_than_the_tower_is_a_config_error(tmp_path):
    from musicot.clap.train import ClapConfig, train
    from musicot.config import ConfigError

    spec = M.preset_spec("tiny", window_s=WINDOW_S)
    assert spec.min_clip_s == pytest.approx(1.6)  # 16 frames of 100 ms
    with pytest.raises(ConfigError, match="crop_s"):
        train(ClapConfig(window_s=WINDOW_S, crop_s=1.0), tmp_path / "tracks.parquet", tmp_path / "out")


def test_anchor_term_ties_each_anchor_word_to_its_stem(tmp_path):
    """Locked stage with the anchor term: each anchor word ends up nearest the windows that have its stem."""
    from musicot.clap.train import locked_clip_loss_fn
    from musicot.training import LoopConfig, train_loop

    torch.manual_seed(0)
    model = M.build(M.preset_spec("tiny", window_s=WINDOW_S))
    texts = [f"song number {i}." for i in range(8)]  # never a stem word: only the anchor term can teach them
    kinds = [["piano"], ["drums"], ["drums", "piano"], ["bass"]]
    labels = torch.tensor([[float(s in kinds[i % 4]) for s in D.ANCHORS] for i in range(8)])
    # distinct non-negative tower embeddings per kind (as relu(fc1) gives): the test is about the loss, not the tower
    base = torch.rand(4, 512, generator=torch.Generator().manual_seed(1))
    feats = base[[i % 4 for i in range(8)]] + 0.05 * torch.rand(8, 512, generator=torch.Generator().manual_seed(2))
    params = [p for n, p in model.clap.named_parameters() if not n.startswith("audio_branch.")] + [model.anchor_bias]
    batch = (feats, model.tokenize(texts), labels)
    bias = model.anchor_bias.item()
    opt = torch.optim.AdamW(params, lr=3e-3)
    train_loop(model, opt, lambda s: batch, locked_clip_loss_fn(1.0), LoopConfig(300, 100, 100, 50, 0), tmp_path / "s")
    assert model.anchor_bias.item() != bias  # the term trained its bias
    model.eval()
    with torch.no_grad():
        audio = torch.nn.functional.normalize(model.clap.audio_projection(feats), dim=-1).numpy()
    sims = audio @ model.embed_text(list(D.ANCHORS)).T
    from sklearn.metrics import roc_auc_score

    aucs = {
        stem: roc_auc_score(labels[:, j].numpy(), sims[:, j])
        for j, stem in enumerate(D.ANCHORS)
        if 0 < labels[:, j].sum() < len(labels)
    }
    assert np.mean(list(aucs.values())) >= 0.9, aucs  # ClipLoss alone on these texts: about chance


def test_clap_trains_only_the_stages_its_data_can_teach():
    from musicot.clap.train import ClapConfig, learnable_steps
    from musicot.training import NoLearningSignal

    cfg = ClapConfig(tag_steps=7, max_steps=9)
    assert learnable_steps(cfg, has_labels=True, distinct_texts=1) == (7, 9, {})
    tags, steps, skipped = learnable_steps(cfg, has_labels=False, distinct_texts=2)
    assert (tags, steps) == (0, 9) and "no true stems" in skipped["tagging"]
    with pytest.raises(NoLearningSignal, match=r"clap\.pretrained"):
        learnable_steps(cfg, has_labels=False, distinct_texts=1)
    kept = ClapConfig(tag_steps=0, max_steps=9, pretrained="/ckpt/clap.pt")
    tags, steps, skipped = learnable_steps(kept, has_labels=False, distinct_texts=0)
    assert (tags, steps) == (0, 0) and "kept as loaded" in skipped["contrastive"]
