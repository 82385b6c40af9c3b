"""``innx data``: write a dataset out as an image folder, describe a dataset (:mod:`.folders`)."""
