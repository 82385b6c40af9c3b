"""innx: interpret CNN representations and their invariances with invertible networks."""

__version__ = "0.1.0"
