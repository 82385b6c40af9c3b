"""The verbs of innx as plain functions; they take a progress callback and never print."""
