"""Where a path option points: files shipped inside dckd are named ``dckd:<path under dckd/assets>``.

``dckd:weights/demo_teacher_x4.pth`` is the demo teacher shipped with the package, wherever it is installed;
any other text is an ordinary path. The name cannot leave the assets folder (no ``..``, no absolute path).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from dckd.errors import ConfigError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""The folder of the files shipped inside the package (bundled photographs, demo weights)."""
ASSET_PREFIX = "dckd:"


def asset(relative: str) -> Path:
    """The shipped file ``dckd/assets/<relative>`` (checked to stay inside the assets folder)."""
    pure = PurePosixPath(relative)
    if not relative or pure.is_absolute() or ".." in pure.parts or "\\" in relative:
        raise ConfigError(
            f"{ASSET_PREFIX}{relative}: a shipped file is named by a relative path inside dckd's "
            "assets folder, e.g. dckd:weights/demo_teacher_x4.pth"
        )
    return ASSETS.joinpath(*pure.parts)


def resolve_path(text: str | Path) -> Path:
    """``dckd:<relative>`` -> the shipped file; anything else -> ``Path(text)``."""
    text = str(text)
    if text.startswith(ASSET_PREFIX):
        return asset(text[len(ASSET_PREFIX) :])
    return Path(text)
