"""The `penstat` command line (also `python -m penstat`)."""
