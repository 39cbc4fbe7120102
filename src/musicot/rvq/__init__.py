"""Residual VQ tokenizer of the musical thought (CLAP window embeddings -> L codes per window).

`musicot.rvq.codes` (flattening, vocabulary ids; numpy only) and `musicot.rvq.model` (the torch RVQ) are
imported by name: the package itself imports nothing, so a figure that only flattens codes does not load torch.
"""
