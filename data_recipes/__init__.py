"""Corpus recipes: one module per corpus turning raw material into webdataset shards + a manifest
(``qwenaudio_train.data.shards``). ``synthetic`` builds the offline multi-task corpus with ``tts`` (espeak-ng)
and numpy-synthesised sounds and notes."""
