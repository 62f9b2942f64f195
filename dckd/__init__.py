"""dckd: Dynamic Contrastive Knowledge Distillation for efficient image restoration.

Importing the package has no side effects and imports no optional dependency; reach the parts by
plain imports (``from dckd.models.backbones import BACKBONES``, ``from dckd.losses import contrastive``).
"""

__version__ = "0.1.0"
