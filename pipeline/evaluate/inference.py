"""Batch inference: map samples through a trained encoder."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm


@torch.no_grad()
def embed(model: torch.nn.Module, features: np.ndarray, batch_size: int = 1024, progress: bool = True) -> np.ndarray:
    """``(n, output_dim)`` float32 embeddings of ``features`` (n, *input_shape); ``progress``: a bar on a
    terminal."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in tqdm(
        range(0, len(features), batch_size), desc="embed", unit="batch", disable=None if progress else True, leave=False
    ):
        batch = torch.from_numpy(np.ascontiguousarray(features[start : start + batch_size], dtype=np.float32))
        out.append(model(batch.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)
