"""Short-training evaluation and HPO on Ray Tune + Optuna (``tuner``) and the record of its
trials (``record``): ``autost.tune.tune`` / ``autost tune``."""

from autost.tune.record import STUDY_NAME, TrialRecord
from autost.tune.tuner import OBJECTIVES, TuneResult, tune

__all__ = ["OBJECTIVES", "STUDY_NAME", "TrialRecord", "TuneResult", "tune"]
