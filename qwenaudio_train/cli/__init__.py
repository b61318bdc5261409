"""Command-line tools (``qwenaudio-data``); training and eval entry points live beside the library."""
