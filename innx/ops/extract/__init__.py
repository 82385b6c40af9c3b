"""``innx extract``: a backbone over a dataset, its activations streamed into an HDF5 store
(:mod:`.extraction`), fed by :mod:`.inputs` and written by :mod:`.store_thread`."""
