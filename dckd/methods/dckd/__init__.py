"""DCKD, one subpackage: the method (``method.py``) and its parts (history model, negatives and their
degradations, invertible augmentations for DCKD*, the VQGAN feature space)."""

from dckd.methods.dckd.method import DCKD, DCKDOptions

__all__ = ["DCKD", "DCKDOptions"]
