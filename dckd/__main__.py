"""``python -m dckd`` (and ``torchrun -m dckd train CONFIG``)."""

import sys

from dckd.apps.cli import main

sys.exit(main())
