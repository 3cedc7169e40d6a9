"""The sections that say how to train and judge the encoder: ``encoder``, ``train``, ``evaluate``, ``tracking``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.config.base import Section
from pipeline.config.choices import ENCODERS, LOSSES, OPTIMIZERS, PAIR_SOURCES


class EncoderConfig(Section):
    name: str = Field("lenet", description="encoder: lenet (the paper's CNN), mlp or resnet18")
    output_dim: int = Field(2, ge=1)
    options: dict[str, int | float | str] = Field(default_factory=dict, description="encoder keyword options")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return ENCODERS.check(v)

    @model_validator(mode="after")
    def _options(self) -> EncoderConfig:
        try:
            ENCODERS.options(self.name, self.options)
        except ValueError as exc:
            raise ValueError(f"encoder.options: {exc}") from None
        return self

    def spec(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """``build_encoder`` keyword arguments for samples of ``input_shape`` (also stored in checkpoints)."""
        return {
            "name": self.name,
            "output_dim": self.output_dim,
            "options": dict(self.options),
            "input_shape": list(input_shape),
        }


class TrainConfig(Section):
    num_workers: int = Field(2, ge=1, description="Ray Train workers")
    cpus_per_worker: float = Field(1.0, gt=0)
    local_steps: int = Field(
        1,
        ge=1,
        description="with several workers: optimizer steps each worker takes alone between averages of "
        "their weights (local SGD; pipeline/train/averaging.py); 1 = DDP, gradients averaged every step",
    )
    max_failures: int = Field(
        2,
        ge=-1,
        description="restarts of the workers from the last checkpoint after a worker or node is lost; "
        "-1: no limit (an error a restart cannot cure ends the run at once)",
    )
    use_gpu: bool | Literal["auto"] = Field("auto", description="auto: GPUs when the cluster has them")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="encoder forward pass: auto = bf16 autocast on GPU, fp32 on CPU; the loss is fp32"
    )
    mode: Literal["per_pair", "batch"] = Field(
        "batch", description="per_pair: the paper's sampled pairs; batch: also score all pairs in a batch"
    )
    epochs: int | float = Field(
        30,
        gt=0,
        description="passes over the similar pairs; a fraction trains part of the last pass (e.g. 0.5: half of one)",
    )
    steps: int | None = Field(
        None,
        ge=1,
        description="optimizer steps per worker in all, instead of train.epochs "
        "(an epoch: a worker's share of the similar pairs, train.batch_size at a time)",
    )
    checkpoint_every: float = Field(
        300,
        ge=0,
        description="seconds between checkpoints within an epoch (a run "
        "killed then resumes there, on the same loss curve); 0 = at epochs' ends only",
    )
    batch_size: int = Field(64, ge=1, description="similar pairs per step and worker")
    negatives_per_positive: float = Field(
        0.25, ge=0, description="per_pair: dissimilar pairs drawn per similar pair; batch: their weight ratio"
    )
    loss: str = Field(
        "contrastive",
        description="contrastive (the paper's), neg (UMAP-like) or infonce (t-SNE-like); see encoders/losses",
    )
    loss_options: dict[str, float] = Field(
        default_factory=dict, description="neg: exaggeration, normalization; infonce: exaggeration"
    )
    margin: float = Field(1.0, gt=0, description="m in the contrastive loss")
    optimizer: str = Field(
        "adam",
        description="sgd, adam or adamw: Adam with decoupled weight decay (adam adds weight_decay to the gradient)",
    )
    lr: float = Field(1e-3, gt=0, description="learning rate at train.lr_reference_batch (scaled by lr_scaling)")
    lr_scaling: Literal["none", "sqrt", "linear"] = Field(
        "none",
        description="how the learning rate grows with train.batch_size: lr x (batch_size / lr_reference_batch)^p, "
        "p = 0 (none), 1/2 (sqrt, for Adam) or 1 (linear, for SGD)",
    )
    lr_reference_batch: int = Field(64, ge=1, description="the batch size train.lr is given for (lr_scaling)")
    lr_schedule: Literal["constant", "cosine"] = Field("cosine", description="cosine: decays to 0 by the last step")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    weight_decay: float = Field(0.0, ge=0)
    source_weights: dict[str, float] = Field(
        default_factory=dict,
        description="weight of the similar pairs of each source (pairs.sources) relative to "
        "the others, e.g. {transform: 4} to pull a sample's own transformed copies together harder; unnamed "
        "sources weigh 1, and the weights are normalised so the similar half keeps its total weight",
    )
    input_noise: float = Field(
        0.0,
        ge=0,
        description="standard deviation of Gaussian noise added to every training input, in feature "
        "units (MNIST pixels run 0-1): smooths the map around the training samples, so unseen samples land nearer "
        "their neighbours; 0 = none",
    )
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="keep an exponential moving average of the weights (updated every step) "
        "and return it as the trained model; null = the last weights",
    )
    features: Literal["auto", "device", "stream"] = Field(
        "auto",
        description="device: the training features copied to the device once; stream: read by id from "
        "the sample store per step (pinned, copied without blocking); auto: device when they take at most a "
        "quarter of its free memory",
    )
    prefetch: Literal["auto"] | int = Field(
        "auto",
        description="steps prepared ahead in a background thread; 0 = inline; auto: 2 on GPU, 0 on CPU "
        "(where the thread only competes with the worker's own compute)",
    )

    def averaged_every(self, world: int) -> int:
        """H when ``world`` workers average their weights themselves every H steps (local SGD), else 0: DDP
        averages the gradients (``local_steps`` 1), or one worker has nothing to average with."""
        return self.local_steps if world > 1 and self.local_steps > 1 else 0

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        return LOSSES.check(v)

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v: str) -> str:
        return OPTIMIZERS.check(v)

    @field_validator("loss_options")
    @classmethod
    def _loss_options(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        if "loss" not in info.data:
            return v  # train.loss is wrong, and says so
        LOSSES.options(info.data["loss"], v)
        return v

    @field_validator("source_weights")
    @classmethod
    def _source_weights(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            PAIR_SOURCES.check(name)
        bad = {k: w for k, w in v.items() if not w > 0}
        if bad:
            raise ValueError(f"weights must be positive numbers, got {bad}")
        return v

    @field_validator("prefetch", mode="before")
    @classmethod
    def _prefetch(cls, v: Any) -> Any:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 64):
            return v
        raise ValueError(f"must be 'auto' or a number of steps from 0 to 64 (got {v!r})")


class EvaluateConfig(Section):
    trustworthiness_k: list[int] = Field(default_factory=lambda: [5, 12])
    knn_k: int = Field(5, ge=1, description="k of the k-NN classifier inside the embedding")
    thumbnails: int = Field(400, ge=0, description="digit thumbnails drawn on the map")
    scored_samples: int = Field(
        10_000,
        ge=10,
        description="held-out originals the metrics are computed on: a seeded sample of this many when a "
        "split holds more (trustworthiness costs n^2 time), all of them otherwise; every row is embedded",
    )
    batch_size: int = Field(1024, ge=1)
    validation: float = Field(
        0.1,
        ge=0,
        description="training samples held out of the pairs and of training, to choose settings on: "
        "a fraction (< 1) or a count (>= 1) of the training originals (their transformed copies go with them), "
        "drawn with a fixed seed; 0 = none (the paper's set-up)",
    )
    validation_every: int = Field(
        5,
        ge=0,
        description="score the validation samples every N epochs during "
        "training (and after the last); 0 = only at the end",
    )
    validation_samples: int = Field(
        1000,
        ge=10,
        description="validation originals scored during training "
        "(a fixed random subset; the end of the run scores all of them)",
    )
    select: Literal["last", "best"] = Field(
        "last",
        description="the trained model: the last epoch's, or the epoch with the best validation "
        "trustworthiness at the first trustworthiness_k (needs validation)",
    )

    @field_validator("trustworthiness_k")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError(f"must be a non-empty list of integers >= 1, got {v}")
        return v

    @field_validator("validation")
    @classmethod
    def _fraction_or_count(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError(f"a fraction below 1 or a whole count of samples, got {v}")
        return v

    @model_validator(mode="after")
    def _select_needs_validation(self) -> EvaluateConfig:
        if self.select == "best" and not self.validation:
            raise ValueError(
                "evaluate.select: 'best' picks the epoch by its validation score; set "
                "evaluate.validation (e.g. 0.1) or use select: last"
            )
        return self


class TrackingConfig(Section):
    experiment: str = Field("drlim", min_length=1)
    registered_model: str = Field("drlim-mnist-4-9", min_length=1)
    alias: str = Field("champion", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", description="set on each new version")

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        # MLflow reserves "latest" and version-like aliases ("v3").
        if v.lower() == "latest" or (v[:1] in "vV" and v[1:].isdigit()):
            raise ValueError(f"alias {v!r} is reserved by MLflow; use a name such as 'champion' or 'staging'")
        return v


def held_out_count(n: int, validation: float) -> int:
    """How many of ``n`` training originals ``evaluate.validation`` holds out (a fraction, or a count)."""
    return int(validation) if validation >= 1 else round(validation * n)
