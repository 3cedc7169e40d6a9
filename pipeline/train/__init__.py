"""Train stage: fit the Siamese encoder with Ray Train.

``trainer.py`` runs the stage (a ``TorchTrainer``, checkpoints, the trained model); ``loop.py`` is what each
Ray Train worker runs; ``batches.py`` says which pairs a step scores and how they are weighted; ``inputs.py``
fetches features by id; ``allocator.py`` keeps a worker's freed memory.
"""

from pipeline.lazy import lazy_exports

__all__ = ["TrainResult", "train", "train_loop_per_worker"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TrainResult": "pipeline.train.stage",
        "train": "pipeline.train.stage",
        "train_loop_per_worker": "pipeline.train.worker",
    },
)
