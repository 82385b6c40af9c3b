"""Datasets: the generated ``shapes`` default, image folders, and local copies of public sets.

Every dataset is an :class:`ImageDataset` whose item ``i`` is ``(x uint8 [C, H, W], label int,
attributes float32 [K])``, the same on every read (:mod:`innx.data.base` states the contract).
Datasets are named by spec strings and opened with :func:`open_dataset`::

    shapes:n=20000,size=32,seed=0          generated, with ground-truth factors (innx.data.shapes)
    digits:n=12000,size=32,seed=0          generated handwriting-like digits (innx.data.digits)
    cues:n=20000,size=32,seed=0            generated cue conflict: shape and texture (innx.data.cues)
    folder:PATH                            class subfolders or flat, optional attributes.csv
    mnist:ROOT,split=train                 torchvision's on-disk layouts, read locally,
    colormnist:ROOT,seed=0                 never downloaded; a missing file is an error that
    cifar10:ROOT,split=test                names it and says where to get it
    celeba:ROOT,split=valid,label=Smiling
    dsprites:FILE                          dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz
    3dshapes:FILE                          3dshapes.h5

Names are entry points of the ``innx.datasets`` group, so a plugin adds a dataset the same way
the built-ins are added (:func:`dataset_names` lists them); a dataset module is imported when a
spec names it.

Example::

    >>> ds = open_dataset("shapes:n=10,size=32")
    >>> ds.spec, len(ds), [a.name for a in ds.attributes]
    ('shapes:n=10,size=32,seed=0', 10, ['shape', 'fg_color', 'bg_color', 'scale', 'x', 'y'])
"""

from innx.data.base import CATEGORICAL, CONTINUOUS, Attribute, ImageDataset, Item
from innx.data.cues import render_cue, render_cues
from innx.data.shapes import render_shape, render_shapes
from innx.data.spec import Options, Spec, dataset_names, open_dataset, parse_spec

__all__ = [
    "CATEGORICAL",
    "CONTINUOUS",
    "Attribute",
    "ImageDataset",
    "Item",
    "Options",
    "Spec",
    "dataset_names",
    "open_dataset",
    "parse_spec",
    "render_cue",
    "render_cues",
    "render_shape",
    "render_shapes",
]
