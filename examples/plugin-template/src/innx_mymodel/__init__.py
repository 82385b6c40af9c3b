"""innx-mymodel: a template plugin that wraps your own CNN as an innx backbone (and adds a command)."""
