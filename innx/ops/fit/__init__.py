"""``innx fit``: each fit is its typed options and a ``Task`` for the one loop of :mod:`innx.train`
(:mod:`.classifier`, :mod:`.autoencoder`, :mod:`.invariance` for ``t``, :mod:`.semantic` for ``e``)."""
