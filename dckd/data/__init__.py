"""Data: image reading/writing, folder layouts, paired datasets, the resumable sampler, validation.

See ``datasets.py`` for the sample format and the index protocol, ``image_io.py`` for the image policy.
"""

from dckd.data.datasets import (
    BicubicDataset,
    PairedDataset,
    RestorationDataset,
    gopro,
    hr_folder,
    input_target,
    paired_folders,
    sr_benchmark,
)
from dckd.data.folders import (
    IMAGE_EXTENSIONS,
    BenchmarkLayout,
    PairMatch,
    benchmark_layout,
    find_pairs,
    gopro_layout,
    input_target_layout,
    list_images,
    match_pairs,
)
from dckd.data.image_io import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image,
    read_image,
    read_image_uint8,
    write_image,
)
from dckd.data.sampler import TrainBatchSampler, seed_for
from dckd.data.transforms import augment, mod_crop, paired_random_crop, to_tensor
from dckd.data.validate import Problem, ValidationReport, check_dataset, validate_dataset
from dckd.errors import DatasetError, ImageReadError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "BenchmarkLayout",
    "BicubicDataset",
    "DatasetError",
    "DecodedImage",
    "ImageReadError",
    "PairMatch",
    "PairedDataset",
    "Problem",
    "RestorationDataset",
    "TrainBatchSampler",
    "ValidationReport",
    "augment",
    "benchmark_layout",
    "check_dataset",
    "decode_image",
    "find_pairs",
    "gopro",
    "gopro_layout",
    "hr_folder",
    "input_target",
    "input_target_layout",
    "list_images",
    "match_pairs",
    "mod_crop",
    "paired_folders",
    "paired_random_crop",
    "read_image",
    "read_image_uint8",
    "seed_for",
    "sr_benchmark",
    "to_tensor",
    "validate_dataset",
    "write_image",
]
