"""Training methods, reached by name through one dict (``Config.method``); built by ``dckd.engine.setup``."""

from dckd.methods.dckd.method import DCKD
from dckd.methods.fakd import FAKD
from dckd.methods.logits import Logits
from dckd.methods.mclir import MCLIR
from dckd.methods.scratch import Scratch

METHODS = {"scratch": Scratch, "logits": Logits, "fakd": FAKD, "dckd": DCKD, "mclir": MCLIR}
