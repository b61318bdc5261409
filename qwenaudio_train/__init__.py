"""qwenaudio-train: an open training framework for the Qwen-Audio recipe.

Data flows shards -> mixture -> samples -> batches -> model -> trainer -> checkpoint -> eval; each stage is a
module of this package (see README.md for the map).
"""

__version__ = "0.1.0"
