"""Embed stage (``drlim embed``): any samples the data stage reads, through any registered model.

``stage.py`` plans the ids and runs Ray Data actors; ``predict.py`` is the Ray-free core (shape the features for
the model, predict in batches, the embeddings table)."""
