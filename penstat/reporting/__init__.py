"""Reports rendered from a publication: the headline table, the real-data summary."""
