"""Training methods: one module each, listed in one dict. ``method: <name>`` in a config selects one; its
options are the YAML section of the same name (``Method.Options``). To add a method: write its module
(see ``dckd/methods/base.py`` for the contract) and add one entry here."""

from dckd.methods.base import Method, Needs, Parts
from dckd.methods.codebook import CodebookTraining
from dckd.methods.dckd import DCKD
from dckd.methods.fakd import FAKD
from dckd.methods.logits import Logits
from dckd.methods.mclir import MCLIR
from dckd.methods.scratch import Scratch

METHODS: dict[str, type[Method]] = {
    "scratch": Scratch,
    "logits": Logits,
    "fakd": FAKD,
    "dckd": DCKD,
    "mclir": MCLIR,
    "codebook": CodebookTraining,
}

__all__ = ["METHODS", "Method", "Needs", "Parts"]
