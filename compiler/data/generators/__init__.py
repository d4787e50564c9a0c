"""Synthetic data generators, one module each, registered by `kind` with `@register_generator`."""
