"""Semantic audio tokens at 25 Hz: BEST-RQ encoder, optional CTC fine-tune on lyrics, one k-means codebook.

Floors (imports flow one way): `config` <- `features` <- `data` <- `model` <- `ssl` / `ctc` <-
`tokenizer` <- the CLIs `train`, `tokens`, `probe`. Later stages use
`musicot.semantic.tokenizer.Tokenizer` to turn any audio into tokens.
"""
