"""The options schema (``schema.py``), YAML loading and validation (``loading.py``), the published code's
options files (``published.py``) and reading whichever a user gives (``reading.py``)."""

from dckd.config.loading import dump_yaml
from dckd.config.reading import read_config
from dckd.config.schema import (
    Config,
    DataConfig,
    DatasetConfig,
    EvaluationConfig,
    NetworkConfig,
    OptimizerConfig,
    ScheduleConfig,
    TeacherCacheConfig,
    TrainConfig,
    VQGANConfig,
    config_from_dict,
    load_config,
)

__all__ = [
    "Config",
    "DataConfig",
    "DatasetConfig",
    "EvaluationConfig",
    "NetworkConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TeacherCacheConfig",
    "TrainConfig",
    "VQGANConfig",
    "config_from_dict",
    "dump_yaml",
    "load_config",
    "read_config",
]
