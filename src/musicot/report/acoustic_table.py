"""The acoustic table: does audio survive the chain? One row per metric, one column per version of the
validation songs (original, VAE reconstruction, mel round trip, re-syntheses), then the models and speed."""

from __future__ import annotations

import pandas as pd

VERSIONS = ("original", "vae_reconstruction", "mel_roundtrip", "resynthesis")
LABELS = {
    "mr_stft_distance": "multi-resolution STFT distance (lower is closer)",
    "mel_l1": "log-mel L1 (nats)",
    "si_sdr_db": "SI-SDR (dB)",
    "clap_cosine": "CLAP cosine to the original",
    "auc_mean": "zero-shot stem AUC, mean",
    "tempo_acc2": "tempo Acc2 (librosa vs corpus)",
    "tempo_rel_error": "tempo median relative error",
    "goal_clap_cosine": "goal met: CLAP cosine (>= 0.8 recon, >= 0.6 resynthesis)",
    "goal_auc": "goal met: stem AUC within 0.1 of the originals'",
}


def chain_rows(quality: pd.DataFrame) -> pd.DataFrame:
    """Metric x version pivot of results/acoustic/eval/quality.csv (speed rows left out); an AUC whose
    windows all hold the stem (or none do) is undefined and stays out."""
    chain = quality[quality["version"] != "speed"]
    table = chain.pivot_table(index="metric", columns="version", values="value", aggfunc="first", sort=False)
    versions = [v for v in VERSIONS if v in table.columns]
    n = chain.groupby("metric", sort=False)["n"].max()
    out = table[versions].reset_index()
    out.insert(0, "part", "chain")
    out["metric"] = [LABELS.get(m, m.replace("_", " ")) for m in out["metric"]]
    out["n"] = n.reindex(table.index).to_numpy()
    return out


def model_rows(vae: dict, dit: dict, quality: pd.DataFrame, space: str) -> pd.DataFrame:
    """Sizes, steps, final held-out losses and wall times of both models, and the chain's speed."""
    rows = [dict(part="acoustic", metric=f"space the DiT models: {space}", value=None)]
    if vae.get("pretrained"):
        rows.append(dict(part="VAE-GAN", metric=f"loaded from {vae['pretrained']} (not trained here)", value=None))
    else:
        last = vae["history"]["eval"][-1][1] if vae["history"]["eval"] else {}
        first = vae["history"]["eval"][0][1] if vae["history"]["eval"] else {}
        rows += [
            dict(part="VAE-GAN", metric="parameters (autoencoder)", value=vae["parameters"]["vae"]),
            dict(part="VAE-GAN", metric="latent dim x frames/s", value=vae["latent_dim"] * vae["frame_rate"]),
            dict(
                part="VAE-GAN",
                metric="optimizer steps",
                value=vae["history"]["train"][-1][0] if vae["history"]["train"] else 0,
            ),
            dict(part="VAE-GAN", metric="valid MR-STFT loss, first", value=first.get("valid_stft_loss")),
            dict(part="VAE-GAN", metric="valid MR-STFT loss, last", value=last.get("valid_stft_loss")),
            dict(part="VAE-GAN", metric="training wall time (s)", value=vae["walls_s"]["train"]),
        ]
    last = dit["history"]["eval"][-1][1] if dit["history"]["eval"] else {}
    first = dit["history"]["eval"][0][1] if dit["history"]["eval"] else {}
    rows += [
        dict(part="DiT", metric="parameters", value=dit["parameters"]),
        dict(
            part="DiT", metric="optimizer steps", value=dit["history"]["train"][-1][0] if dit["history"]["train"] else 0
        ),
        dict(part="DiT", metric="valid v-loss, first", value=first.get("valid_loss")),
        dict(part="DiT", metric="valid v-loss, last (conditional)", value=last.get("valid_loss")),
        dict(part="DiT", metric="valid v-loss, last (unconditional)", value=last.get("valid_uncond_loss")),
        dict(part="DiT", metric="training wall time (s)", value=dit["walls_s"]["train"]),
    ]
    speed = quality[quality["version"] == "speed"]
    rows += [
        dict(part="speed", metric=f"{r.metric}: audio seconds per wall second", value=r.value)
        for r in speed.itertuples()
    ]
    return pd.DataFrame(rows)


def acoustic_table(quality: pd.DataFrame, vae: dict, dit: dict, space: str) -> pd.DataFrame:
    chain = chain_rows(quality)
    models = model_rows(vae, dit, quality, space)
    df = pd.concat([chain, models], ignore_index=True)
    numeric = [c for c in df.columns if c not in ("part", "metric")]
    return df.astype(dict.fromkeys(numeric, "float64")).round(4)
