"""The config schema: complete, validated, in agreement with the stage dataclasses."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from musicot.analysis.thought import AnalysisConfig
from musicot.clap.train import ClapConfig
from musicot.config import ConfigError, build, load_config, load_schema, validate
from musicot.data.compose import StemGains, SynthConfig
from musicot.data.ingest import IngestConfig
from musicot.data.voice import VoiceConfig
from musicot.prep.lyrics import AsrConfig
from musicot.prep.separate import SeparationConfig
from musicot.prep.structure import StructureConfig
from musicot.prep.tags import TagsConfig
from musicot.prep.vad import VadConfig
from musicot.rvq.model import RvqConfig
from tests.conftest import REPO


def _properties(schema: dict, path: str = ""):
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}{name}", sub
        yield from _properties(sub, f"{path}{name}.")


def test_every_key_has_description_and_default():
    for key, sub in _properties(load_schema()):
        assert sub.get("description"), f"{key} has no description"
        assert "default" in sub, f"{key} has no default"


def test_empty_config_fills_every_default():
    config = validate({})
    assert config["corpus"]["synth"]["voice"]["legato"] == pytest.approx(0.92)
    assert config["corpus"]["source"] == "synth"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"corpus": {"sample_rate": "fast"}}, "corpus.sample_rate"),
        ({"corpus": {"synth": {"n_songs": 0}}}, "corpus.synth.n_songs"),
        ({"corpus": {"source": "cloud"}}, "corpus.source"),
        ({"corpus": {"synth": {"sonuds": 3}}}, "corpus.synth"),
    ],
)
def test_bad_values_name_their_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(raw)


def test_presets_validate():
    load_config(REPO / "config.yaml")
    load_config(REPO / "workflow" / "presets" / "paper.yaml")


def test_inline_json_equals_file(default_config):
    import json

    assert load_config(json.dumps(yaml.safe_load((REPO / "config.yaml").read_text()))) == default_config


@pytest.mark.parametrize(
    ("cls", "path"),
    [
        (SynthConfig, ("corpus", "synth")),
        (VoiceConfig, ("corpus", "synth", "voice")),
        (StemGains, ("corpus", "synth", "stem_gain_db")),
        (IngestConfig, ("corpus", "ingest")),
        (SeparationConfig, ("prep", "separation")),
        (VadConfig, ("prep", "vad")),
        (AsrConfig, ("prep", "asr")),
        (StructureConfig, ("prep", "structure")),
        (TagsConfig, ("prep", "tags")),
        (ClapConfig, ("clap",)),
        (RvqConfig, ("rvq",)),
        (AnalysisConfig, ("analysis",)),
    ],
)
def test_dataclasses_match_schema(cls, path, default_config):
    section = default_config
    for key in path:
        section = section[key]
    if cls is IngestConfig:  # its `kind` is corpus.source
        section = {"kind": "folder", **section}
    assert {f.name for f in dataclasses.fields(cls)} == set(section)
    built = build(cls, section)
    assert isinstance(built, cls)
    # where a dataclass carries defaults for library use, they must be the schema's
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING and not dataclasses.is_dataclass(f.default):
            value = section[f.name]
            assert f.default == (tuple(value) if isinstance(f.default, tuple) else value), (cls.__name__, f.name)
