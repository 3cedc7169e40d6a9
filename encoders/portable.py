"""An encoder in the portable form the model registry uses: a ``torch.export`` program (MLflow's ``pt2``), which
loads without this project's classes and without unpickling code, and takes any batch size."""

from __future__ import annotations

import io

import torch


class Exported(torch.nn.Module):
    """An exported encoder as a module. Its graph was traced in evaluation mode, which it keeps (``train`` and
    ``eval`` change nothing); ``data`` is the program it was loaded from, when known."""

    def __init__(self, graph: torch.nn.Module, data: bytes | None = None) -> None:
        super().__init__()
        self.graph, self.data = graph, data

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.graph(x)
        return out

    def train(self, mode: bool = True) -> Exported:
        return self


def export_encoder(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    """``model`` exported on ``example`` (a batch of at least two samples), its batch dimension left free (an
    ``Exported`` one as it was loaded)."""
    if isinstance(model, Exported) and model.data is not None:
        return model.data
    exported = torch.export.export(model.cpu().eval(), (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    buffer = io.BytesIO()
    torch.export.save(exported, buffer)
    return buffer.getvalue()


def load_encoder(data: bytes) -> Exported:
    """The module of an exported encoder (``export_encoder``)."""
    return Exported(torch.export.load(io.BytesIO(data)).module(), data)
