"""The high-level API (to be written)."""
