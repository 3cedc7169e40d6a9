"""Train stage: fit the Siamese encoder with Ray Train.

``stage.py`` runs the stage (a ``TorchTrainer``, checkpoints, the trained model); ``worker.py`` is what each
Ray Train worker runs; ``session.py`` is a worker's training without Ray (also a whole training in this process,
``train_in_process``); ``checkpoint.py`` holds the checkpoint format; ``core.py`` runs the epochs; ``batches.py``
says which pairs a step scores and how they are weighted; ``features.py`` fetches features by id;
``validation.py`` scores during training; ``averaging.py`` averages weights across workers (local SGD);
``allocator.py`` keeps a worker's freed memory.
"""

from pipeline.lazy import lazy_exports

__all__ = ["TrainResult", "train", "train_in_process", "train_loop_per_worker"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TrainResult": "pipeline.train.session",
        "train_in_process": "pipeline.train.session",
        "train": "pipeline.train.stage",
        "train_loop_per_worker": "pipeline.train.worker",
    },
)
