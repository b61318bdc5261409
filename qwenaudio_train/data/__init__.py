"""Data rooms: sample schema, shard writing/reading, the task mixture, collation and the loader."""
