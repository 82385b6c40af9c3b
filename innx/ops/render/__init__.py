"""``innx render``: what a layer ignores, as pictures: the modes of ``t`` (:mod:`.modes`), those
of ``e`` (:mod:`.semantic`) and the drawing of grids and animations (:mod:`.grids`)."""
