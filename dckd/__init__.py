"""dckd: Dynamic Contrastive Knowledge Distillation for efficient image restoration.

The Python API (``dckd.api``): ``distill`` a student you hold in memory, ``load_network`` from a weights file,
``evaluate`` a network on datasets. Everything else is reached by plain imports (``dckd.models.backbones``,
``dckd.methods``, ``dckd.losses``, ``dckd.engine``); importing the package imports no optional dependency.
"""

from dckd.api import distill, evaluate, load_network

__version__ = "0.1.0"

__all__ = ["__version__", "distill", "evaluate", "load_network"]
