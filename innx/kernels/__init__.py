"""Fused kernels (Triton) with a torch reference, chosen at run time. Empty until the kernels issue."""
