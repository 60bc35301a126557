"""Publications of the marts: staged, gated, switched atomically."""
