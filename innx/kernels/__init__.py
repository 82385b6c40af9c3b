"""Fused kernels (Triton) for the flows' elementwise work, with the torch reference they match.

:mod:`innx.kernels.dispatch` chooses per call (``--kernels auto|torch|triton``);
:mod:`innx.kernels.reference` is the plain-torch math; :mod:`innx.kernels.triton_flows` holds the
kernels and is imported only when they are used.
"""
