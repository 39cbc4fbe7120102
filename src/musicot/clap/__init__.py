"""CLAP audio-text embeddings (laion-clap): tiny and paper presets, corpus windows with stem-truth captions.

musicot.clap.compat imports laion's `clap_module` offline without torchvision; musicot.clap.model
builds, saves and loads models and provides `ClapTagScorer` (a musicot.prep.tags.TagScorer);
musicot.clap.data cuts windows and writes captions; musicot.clap.timbres renders the train songs again
with other instruments for training; musicot.clap.train is the CLI (train, embed).
"""
