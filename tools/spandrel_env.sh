#!/usr/bin/env bash
# Make the separate environment in which dckd is checked against spandrel (docs/interop.md).
#
#   bash tools/spandrel_env.sh [VENV]          # default VENV: .venv-spandrel in this checkout
#
# It installs the versions the checks were run with: torch 2.14.1, torchvision 0.29.1 (spandrel imports it, and
# a torchvision built for another torch fails to import), spandrel 0.4.2, dckd's other runtime dependencies
# (read from pyproject.toml) and pytest + hypothesis for the tests. dckd itself is NOT installed: its pyproject
# pins torch<2.14, and pip would replace torch; it runs from this checkout through PYTHONPATH. On a machine
# without a local wheel cache, torch 2.14.1 from PyPI is the CUDA build (several GB; it runs on the CPU too).
# Needs Python >= 3.11 (tomllib). Then, from the checkout:
#
#   OMP_NUM_THREADS=1 PYTHONPATH=. VENV/bin/python tools/spandrel_check.py            # the tables of docs/interop.md
#   OMP_NUM_THREADS=1 PYTHONPATH=. VENV/bin/python -m pytest -q tests/test_spandrel.py tests/test_interop.py
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-spandrel}"

python3 -m venv "$venv"
# dckd's runtime dependencies without torch (pinned below), from its pyproject.toml
mapfile -t dependencies < <("$venv/bin/python" - "$root/pyproject.toml" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    for requirement in tomllib.load(handle)["project"]["dependencies"]:
        if not requirement.replace(" ", "").startswith("torch"):
            print(requirement)
EOF
)
"$venv/bin/pip" install "torch==2.14.1" "torchvision==0.29.1" "spandrel==0.4.2" "${dependencies[@]}" pytest hypothesis
PYTHONPATH="$root" "$venv/bin/python" -c '
import dckd, spandrel, torch, torchvision
print(f"spandrel {spandrel.__version__} ({len(spandrel.MAIN_REGISTRY)} architectures), torch {torch.__version__}, "
      f"torchvision {torchvision.__version__}, dckd {dckd.__version__} from {dckd.__file__}")
'
echo "environment ready: $venv"
