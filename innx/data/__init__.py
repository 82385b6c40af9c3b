"""Datasets (synthetic shapes, image folders, local torchvision sets) and pair samplers. Filled by the datasets issue."""
