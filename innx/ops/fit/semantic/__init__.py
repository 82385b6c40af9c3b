"""``innx fit semantic``: the semantic INN ``e`` from attribute pairs: what it reads
(:mod:`.inputs`), the fit (:mod:`.fit`), its held-out evaluation (:mod:`.evaluate`) and the judge
that reads attributes off images (:mod:`.judge`)."""
