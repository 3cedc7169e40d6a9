"""Typed job configuration: YAML -> validated, frozen objects.

Every field has a default that serves the paper's MNIST 4/9 set-up, so an empty job file is a valid job.
Loading a job imports nothing heavy (no Ray, FAISS or torch): the choices it checks come from the stages'
import-light catalogs; checks that need the data (an encoder against the samples' shape, k against their
number) run in the stages. ``inputs.py`` holds the data and pairs sections, ``training.py`` the encoder,
train, evaluate and tracking sections, ``job.py`` the whole job and its loading.
"""

from pipeline.config.inputs import AdjacentSpec, DataConfig, PairsConfig, PriorRule
from pipeline.config.job import JobConfig, flatten, load_job, parse_override
from pipeline.config.training import EncoderConfig, EvaluateConfig, TrackingConfig, TrainConfig, held_out_count

__all__ = [
    "AdjacentSpec",
    "DataConfig",
    "EncoderConfig",
    "EvaluateConfig",
    "JobConfig",
    "PairsConfig",
    "PriorRule",
    "TrackingConfig",
    "TrainConfig",
    "flatten",
    "held_out_count",
    "load_job",
    "parse_override",
]
