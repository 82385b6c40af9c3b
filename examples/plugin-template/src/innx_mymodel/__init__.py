"""innx-hello: a template plugin that adds ``innx hello``."""
