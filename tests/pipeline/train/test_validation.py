import numpy as np
import torch

from encoders.registry import build_encoder
from pipeline.config import EvaluateConfig
from pipeline.evaluate.scoring import HeldOut
from pipeline.train.validation import ValidationProbe


def _held(n: int = 60) -> HeldOut:
    rng = np.random.default_rng(0)
    ids = np.arange(n)
    origin = np.concatenate([ids[: n // 2], ids[: n // 2]])  # each original once more as a copy
    transform = np.array([None] * (n // 2) + ["shift_x=3"] * (n // 2), dtype=object)
    return HeldOut(
        "validation", np.arange(n), rng.random((n, 6), dtype=np.float32), np.arange(n) % 3, origin, transform, {}
    )


def test_the_probe_scores_when_due_with_the_given_weights():
    cfg = EvaluateConfig(validation_every=3, trustworthiness_k=[5], knn_k=3)
    probe = ValidationProbe(_held(), cfg)
    assert [e for e in range(1, 11) if probe.due(e, 10)] == [3, 6, 9, 10]
    assert [
        e for e in range(1, 6) if ValidationProbe(_held(), cfg.model_copy(update={"validation_every": 0})).due(e, 5)
    ] == [5]
    torch.manual_seed(0)
    model = build_encoder("mlp", 2, {"hidden": 8}, input_shape=(6,))
    other = build_encoder("mlp", 2, {"hidden": 8}, input_shape=(6,)).state_dict()  # other random weights
    own = {k: v.clone() for k, v in model.state_dict().items()}
    scores = probe.score(model, model.state_dict())
    assert set(scores) == {"trustworthiness_5", "knn_accuracy_3", "invariance_ratio"} and probe.key in scores
    assert probe.score(model, other) != scores  # the weights given are the ones scored ...
    assert all(torch.equal(v, own[k]) for k, v in model.state_dict().items())  # ... and the module is untouched
