"""``innx compare``: the reports of ``innx analyze`` on two or more models, side by side.
:mod:`.models` reads and checks the reports; :mod:`.comparison` aligns their layers and builds
the comparison (tables, differences); :mod:`.sentences` says in one sentence per concept where
each model keeps or drops it; :mod:`.report` and :mod:`.figures` write its files."""
