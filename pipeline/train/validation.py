"""Validation during training: a fixed subsample of the validation split, scored on rank 0 every few epochs.

The scores (``val/...``) are what settings and the best epoch are chosen on (``evaluate.select: best``); the
test split is never looked at here. The end of the run scores the whole validation split (``evaluate``).
"""

from __future__ import annotations

import copy

import torch

from pipeline.config import EvaluateConfig
from pipeline.data.store import SampleStore
from pipeline.evaluate.inference import embed
from pipeline.evaluate.scoring import HeldOut, score


class ValidationProbe:
    def __init__(self, data: HeldOut, cfg: EvaluateConfig) -> None:
        self.data, self.cfg = data, cfg
        self.key = f"trustworthiness_{cfg.trustworthiness_k[0]}"  # what the best epoch is chosen by

    @classmethod
    def for_store(cls, store: SampleStore, cfg: EvaluateConfig) -> ValidationProbe | None:
        """A probe of ``cfg.validation_samples`` validation originals (fixed seed), or None without a split."""
        if not store.manifest["splits"].get("validation"):
            return None
        return cls(HeldOut.load(store, "validation", cfg.validation_samples), cfg)

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether to score after ``epoch`` (1-based): every ``validation_every`` epochs, and after the last."""
        every = self.cfg.validation_every
        return epoch == epochs or (every > 0 and epoch % every == 0)

    def score(self, module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, float]:
        """The metrics of ``module`` with ``weights`` (e.g. the weight average) on the probe's samples."""
        model = copy.deepcopy(module)
        model.load_state_dict(weights)
        return score(self.data, embed(model, self.data.features, self.cfg.batch_size), self.cfg)
