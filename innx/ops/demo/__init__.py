"""``innx demo``: the whole method on the built-in shapes dataset, stage by stage, resumable
(:mod:`.runner`; the stages in :mod:`.stages`, their sizes in :mod:`.plan`)."""
