"""Training learned schemes: recipe (params), schedules, the loop, the weight cache, the shared prepare."""

from linksim.training.cache import cache_key, load_or_train, model_cache_dir, write_log
from linksim.training.learned import TrainedWeights, fit_or_load, load_matching
from linksim.training.loop import EpochLog, StepFn, make_optimizer, split_validation, train
from linksim.training.noise import training_no, training_snr_db
from linksim.training.params import (
    CosineSchedule,
    EarlyStopping,
    PiecewiseSchedule,
    PlateauSchedule,
    Schedule,
    TrainParams,
)
from linksim.training.schedules import best_epoch, learning_rate, should_stop

__all__ = [
    "CosineSchedule",
    "EarlyStopping",
    "EpochLog",
    "PiecewiseSchedule",
    "PlateauSchedule",
    "Schedule",
    "StepFn",
    "TrainParams",
    "TrainedWeights",
    "best_epoch",
    "cache_key",
    "fit_or_load",
    "learning_rate",
    "load_matching",
    "load_or_train",
    "make_optimizer",
    "model_cache_dir",
    "should_stop",
    "split_validation",
    "train",
    "training_no",
    "training_snr_db",
    "write_log",
]
