"""Structure step: boundaries of an A-B-A-B texture signal, naming heuristic, scoring, All-in-One hook, rejections."""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import butter, sosfilt

from musicot.audio import write_flac
from musicot.config import build, validate
from musicot.prep import structure
from tests.prep.test_tags import SR, _tone, kick_track

CHANGES = (8.0, 16.0, 24.0)  # seconds where the texture switches
TOTAL_S = 32.0


def abab() -> np.ndarray:
    """Four 8 s blocks at 120 BPM: A = low sine chord + kick, B = bright hiss + high chord + kick."""
    rng = np.random.default_rng(0)
    hiss = sosfilt(butter(4, 4000, "hp", fs=SR, output="sos"), rng.standard_normal(int(TOTAL_S * SR)) * 0.15)
    blocks = []
    for i in range(4):
        kick = 0.5 * kick_track(120.0, 8.0)
        if i % 2 == 0:
            blocks.append(_tone([48, 55, 64], 8.0) + kick)
        else:
            blocks.append(hiss[i * 8 * SR : (i + 1) * 8 * SR] + _tone([74, 78, 81], 8.0, amp=0.1) + kick)
    return np.concatenate(blocks).astype(np.float32)


@pytest.fixture(scope="module")
def cfg() -> structure.StructureConfig:
    return build(structure.StructureConfig, validate({})["prep"]["structure"])


@pytest.fixture(scope="module")
def abab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("structure") / "abab.flac"
    write_flac(path, abab()[:, None], SR)
    return path


def test_config_matches_schema(cfg: structure.StructureConfig) -> None:
    assert cfg == structure.StructureConfig()


def test_abab_boundaries(abab_file: Path, cfg: structure.StructureConfig) -> None:
    rows = structure.structure_song(dict(song_id="abab", audio_path=str(abab_file)), cfg)
    starts = [r["start"] for r in rows]
    assert len(rows) == len(CHANGES) + 1
    assert np.allclose(starts[1:], CHANGES, atol=0.5)
    assert starts[0] == 0.0 and rows[-1]["end"] == pytest.approx(TOTAL_S)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(rows))
    assert rows[0]["label"] == "intro" and rows[-1]["label"] == "outro"
    assert {r["label"] for r in rows} <= set(structure.LABELS)


def test_name_segments_heuristic() -> None:
    clusters = np.array([0, 1, 2, 1, 2, 3, 2, 4])
    loudness = np.array([-3.0, -2.0, -1.0, -2.0, -1.0, -2.5, -1.0, -3.0])
    assert structure.name_segments(clusters, loudness) == [
        "intro",
        "verse",
        "chorus",
        "verse",
        "chorus",
        "bridge",
        "chorus",
        "outro",
    ]
    # chorus first: the remaining cluster is the verse; one segment is a verse
    assert structure.name_segments(np.array([0, 1, 2, 1, 3]), np.array([0, 5, 1, 5, 0.0])) == [
        "intro",
        "chorus",
        "verse",
        "chorus",
        "outro",
    ]
    assert structure.name_segments(np.array([0]), np.array([0.0])) == ["verse"]


def test_pick_boundaries_merges_and_keeps_ends_free() -> None:
    times = np.arange(0.0, 20.0, 0.5)
    curve = np.zeros_like(times)
    curve[[2, 10, 12, 24, 38]] = [1.0, 0.9, 0.5, 0.8, 0.7]  # 1 s (too early), 5 s, 6 s (too close), 12 s, 19 s
    curve[30] = 0.1  # below NOVELTY_THRESHOLD of the maximum
    assert structure.pick_boundaries(curve, times, 20.0, 3.0).tolist() == [5.0, 12.0]


def test_boundary_and_label_scores_exact() -> None:
    ref = np.array([[0.0, 10.0], [10.0, 20.0], [20.0, 30.0]])
    est = np.array([[0.0, 10.2], [10.2, 22.0], [22.0, 30.0]])
    scores = structure.boundary_scores(ref, est)
    assert scores["boundary_p@0.5"] == scores["boundary_r@0.5"] == scores["boundary_f@0.5"] == 0.5
    assert scores["boundary_f@3"] == 1.0
    labels = structure.label_scores(ref, ["verse", "chorus", "verse"], ref, ["intro", "chorus", "intro"])
    assert labels["pairwise_f"] == 1.0  # same grouping, different names
    assert labels["label_accuracy"] == pytest.approx(1 / 3, abs=0.01)


def test_score_structure_rows() -> None:
    truth = pd.DataFrame(
        dict(song_id="a", index=[0, 1], label=["verse", "chorus"], start=[0.0, 10.0], end=[10.0, 20.0])
    )
    estimate = pd.DataFrame(
        dict(song_id=["a", "a", "b"], index=[0, 1, 0], label=["verse", "chorus", "verse"])
        | dict(start=[0.0, 10.3, 0.0], end=[10.3, 21.0, 5.0])
    )
    got = {r["metric"]: (r["value"], r["n"]) for r in structure.score_structure(estimate, truth)}
    assert got["segments_per_song"] == (1.5, 2)
    assert got["boundary_f@0.5"] == (1.0, 1) and got["boundary_f@3"] == (1.0, 1)
    assert got["label_accuracy"][0] == pytest.approx(0.985, abs=0.01)


def test_broken_audio_becomes_rejection(tmp_path: Path, abab_file: Path, cfg: structure.StructureConfig) -> None:
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"\x00" * 64)
    tracks = pd.DataFrame(
        dict(song_id=["ok", "missing", "corrupt"], audio_path=[str(abab_file), str(tmp_path / "no.flac"), str(corrupt)])
    )
    table, rejected = structure.run(tracks, cfg, workers=1)
    assert set(table["song_id"]) == {"ok"}
    assert {(r["song_id"], r["step"], r["reason"]) for r in rejected} == {
        ("missing", "structure", "missing_audio"),
        ("corrupt", "structure", "analysis_failed"),
    }


def test_allin1_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, abab_file: Path) -> None:
    monkeypatch.setitem(sys.modules, "allin1", None)  # import allin1 -> ImportError
    cfg = structure.StructureConfig(method="allin1")
    tracks = pd.DataFrame(dict(song_id=["ok"], audio_path=[str(abab_file)]))
    with pytest.raises(RuntimeError, match="optional"):
        structure.run(tracks, cfg)


def test_allin1_labels_are_mapped(monkeypatch: pytest.MonkeyPatch, abab_file: Path, tmp_path: Path) -> None:
    spans = [(0.0, 0.5, "start"), (0.5, 8.0, "solo"), (8.0, 8.0, "chorus"), (8.0, 32.0, "end")]
    result = types.SimpleNamespace(segments=[types.SimpleNamespace(start=s, end=e, label=lab) for s, e, lab in spans])
    calls = []

    def analyze(paths, model, **kwargs):
        calls.append((paths, model))
        return result  # allin1 returns a bare result, not a list, for one path

    monkeypatch.setitem(sys.modules, "allin1", types.SimpleNamespace(analyze=analyze))
    tracks = pd.DataFrame(dict(song_id=["ok", "gone"], audio_path=[str(abab_file), str(tmp_path / "gone.flac")]))
    table, rejected = structure.run(tracks, structure.StructureConfig(method="allin1"))
    assert calls == [([str(abab_file)], "harmonix-all")]
    assert table["label"].tolist() == ["intro", "bridge", "outro"]
    assert [r["song_id"] for r in rejected] == ["gone"]
