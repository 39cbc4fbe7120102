"""One configuration, validated once against workflow/schemas/config.schema.yaml.

Snakemake validates `config.yaml` in common.smk and hands each rule the sections it needs as
JSON; stage code calls `load_config` on that JSON (or on a YAML path when run by hand) and
then builds its typed dataclasses with `build`. Defaults live in the schema only.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, mistyped or out of range."""


def _with_defaults(validator_class: type) -> type:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The config schema as a dict."""
    if not path.exists():
        raise FileNotFoundError(f"config schema not found at {path}; is the package installed from a checkout?")
    return yaml.safe_load(path.read_text())


def validate(config: Mapping[str, Any], schema: dict | None = None) -> dict:
    """Return a deep copy of `config` with every default filled in, or raise ConfigError naming the key."""
    schema = schema or load_schema()
    filled = copy.deepcopy(dict(config))
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.absolute_path)) or '<top level>'}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return filled


def load_config(source: str | Path) -> dict:
    """Validated config from a YAML file path or an inline JSON object (what Snakemake rules pass)."""
    text = str(source).strip()
    if text.startswith("{"):
        raw = json.loads(text)
    else:
        path = Path(text)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return validate(raw)


T = typing.TypeVar("T")


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """Instantiate a (possibly nested) config dataclass from a validated mapping.

    Keys the dataclass does not declare are an error: schema and dataclass must agree.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    kwargs = {name: _coerce(hints[name], value) for name, value in values.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return build(hint, value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg) and isinstance(value, Mapping):
                return build(arg, value)
    return value


def start_cli(threads: int) -> None:
    """What a stage CLI does first: INFO logging with timestamps, torch CPU threads (0 keeps the default)."""
    import logging

    from musicot import distributed

    logging.basicConfig(level=distributed.log_level(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if threads:
        import torch

        from musicot.distributed import threads_per_process

        torch.set_num_threads(threads_per_process(threads))


def section_json(config: Mapping[str, Any], *keys: str) -> str:
    """The named sections of a validated config as compact JSON (for rule params).

    A dotted key ("lm.train") takes one subsection, so that a stage's params change only with
    what it reads (a new sampling temperature must not retrain the LM). The stage's load_config
    fills the sections left out with their defaults, which it does not read.
    """
    out: dict[str, Any] = {}
    for key in keys:
        *parents, leaf = key.split(".")
        source, target = config, out
        for name in parents:
            source, target = source[name], target.setdefault(name, {})
        target[leaf] = source[leaf]
    return json.dumps(out, sort_keys=True, separators=(",", ":"))
