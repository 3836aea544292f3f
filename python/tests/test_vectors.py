"""The low-level API: CKKS and BGV vectors (to be written)."""
