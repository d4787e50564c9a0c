"""Numeric limits shared by the spec language and the CLI (importable without pydantic, so the
CLI's start-up stays light)."""

MAX_INT = 2**31 - 1  # counts, sizes and seeds must fit TensorFlow's int32
