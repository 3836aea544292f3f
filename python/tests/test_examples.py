"""The examples in examples/python (to be written)."""
