"""Dependencies are pinned once (requirements.txt) and mirrored by the conda env files."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _pins(lines) -> dict[str, str]:
    return {m[1].lower(): m[2] for line in lines if (m := PIN.match(line.strip()))}


def _env_pins() -> dict[str, dict[str, str]]:
    out = {}
    for path in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(path.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        out[path.name] = _pins(pip)
    return out


def test_env_files_mirror_requirements():
    required = _pins((REPO / "requirements.txt").read_text().splitlines())
    no_deps = _pins((REPO / "requirements-nodeps.txt").read_text().splitlines())
    assert not set(no_deps) & set(required), "a package is pinned twice"
    envs = _env_pins()
    assert envs, "no envs/*.yaml found"
    for name, pins in envs.items():
        for package, version in pins.items():
            assert required.get(package) == version, f"envs/{name}: {package}=={version} differs from requirements.txt"
    mirrored = set().union(*map(set, envs.values()))
    # run the workflow and submit its jobs; not needed inside a rule's environment
    tools_only = {"snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep"}
    assert set(required) - mirrored - tools_only == set(), "requirements not mirrored in any env file"


def test_env_files_use_conda_forge_only():
    for path in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(path.read_text())
        assert env["channels"] == ["conda-forge", "nodefaults"], path.name


def test_no_torchaudio_anywhere():
    files = [
        "requirements.txt",
        "requirements-dev.txt",
        "requirements-nodeps.txt",
        "pyproject.toml",
        *(f"envs/{p.name}" for p in (REPO / "envs").glob("*.yaml")),
    ]
    for name in files:
        code = [line.split("#")[0] for line in (REPO / name).read_text().splitlines()]
        assert not any("torchaudio" in line for line in code), f"{name} names torchaudio"


# What each rule group's `python -m` modules import: their env must pin every such requirement.
RULE_MODULES = {
    "clap.yaml": [
        "musicot.clap.train",
        "musicot.rvq.train",
        "musicot.analysis.thought",
        "musicot.analysis.timeline",
        "musicot.analysis.song_thought",
        "musicot.generate.conditions",
        "musicot.metrics.evaluate",
        "musicot.metrics.aesthetics",
        "musicot.listen.kit",
        "musicot.listen.samples",
        "musicot.listen.ratings",
    ],
    "lm.yaml": [
        "musicot.semantic.train",
        "musicot.semantic.tokens",
        "musicot.semantic.probe",
        "musicot.lm.text",
        "musicot.lm.data",
        "musicot.lm.train",
        "musicot.lm.evaluate",
        "musicot.lm.bench",
        "musicot.generate.copying",
    ],
    "acoustic.yaml": [
        "musicot.acoustic.train_vae",
        "musicot.acoustic.latents",
        "musicot.acoustic.train_dit",
        "musicot.acoustic.evaluate",
        "musicot.acoustic.render",
        "musicot.generate.run",
        "musicot.generate.song",
    ],
    "prep.yaml": [
        "musicot.prep.separate",
        "musicot.metrics.analyzability",
        "musicot.rvq.model",
    ],
    "report.yaml": [
        "musicot.report.tables",
        "musicot.report.loss_curve",
        "musicot.report.spectrograms",
        "musicot.report.separator_curve",
        "musicot.report.table1",
        "musicot.metrics.compare",
    ],
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_env_files_pin_what_their_rules_import():
    import json
    import subprocess
    import sys

    required = {_normalise(p) for p in _pins((REPO / "requirements.txt").read_text().splitlines())}
    envs = {name: {_normalise(p) for p in pins} for name, pins in _env_pins().items()}
    for env, modules in RULE_MODULES.items():
        # a fresh interpreter, so only these modules' imports are counted
        script = (
            "import importlib, json, sys, importlib.metadata as md\n"
            "startup = set(sys.modules)\n"  # e.g. setuptools' _distutils_hack, loaded by a .pth file
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "dists = md.packages_distributions()\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - startup}\n"
            "print(json.dumps(sorted({d for m in new for d in dists.get(m, [])})))\n"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
        imported = {_normalise(d) for d in json.loads(out.stdout.strip().splitlines()[-1])}
        missing = (imported & required) - envs[env]
        assert not missing, f"envs/{env} lacks {sorted(missing)}, which its rules import"
