"""Backbones: the contract, the entry-point registry, built-in backbones. Filled by the backbones issue."""
