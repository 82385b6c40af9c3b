"""``innx analyze``: what each fitted layer encodes and ignores, as numbers with intervals and
verdicts. :mod:`.analysis` runs it; :mod:`.measure`, :mod:`.layer` and :mod:`.kept` measure a
layer; :mod:`.stats` and :mod:`.estimators` are the pure estimators; :mod:`.checks` the verdicts;
:mod:`.record` the report as a dict; :mod:`.report`, :mod:`.tables` and :mod:`.figures` its files."""
