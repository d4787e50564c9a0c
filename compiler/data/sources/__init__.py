"""One module per data source; each registers itself with `@register_source(name)`."""
