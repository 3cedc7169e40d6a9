"""What ``DrLIM.fit`` and ``transform`` take, as users hold it: a NumPy array, a pandas or pyarrow table (a list
column of features, or numeric columns), or files (a path, folder, glob or URI, as ``data.path`` takes them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DataError


def is_files(X: Any) -> bool:
    """Whether ``X`` names files (read as ``data.path`` reads them) rather than holding samples."""
    return isinstance(X, (str, os.PathLike))


def as_table_or_array(X: Any, feature_column: str) -> Any:
    """``X`` as something ``sklearn``'s ``validate_data`` takes: an array, or a DataFrame of numeric columns (whose
    names it records). A table with a list column of features (``feature_column``) becomes an ``(n, d)`` array; a
    pyarrow table becomes a DataFrame."""
    if hasattr(X, "to_pandas") and hasattr(X, "column_names"):  # pyarrow Table or RecordBatch
        if feature_column in X.column_names:
            column = X.column(feature_column)
            column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
            width = len(column[0]) if len(column) else 0
            return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)
        X = X.to_pandas()
    if hasattr(X, "columns") and feature_column in X.columns and X[feature_column].dtype == object:
        return np.stack([np.asarray(cell) for cell in X[feature_column]])
    return X


def labels_of(y: Any, n: int) -> np.ndarray:
    """``y`` as the store's labels: integers from 0, -1 for unlabelled samples. Integer labels are kept (-1 stays
    unlabelled); any other labels (names, say) are numbered in sorted order, ``None`` and NaN being unlabelled."""
    values = np.asarray(y)
    if values.shape != (n,):
        raise DataError(
            f"y: {values.shape[0] if values.ndim else 0} labels for {n} samples; give one label per "
            f"sample (-1 or None: unlabelled)"
        )
    if values.dtype.kind in "iub" or (values.dtype.kind == "f" and np.all(values[~np.isnan(values)] % 1 == 0)):
        numbers = np.where(np.isnan(values), -1, values) if values.dtype.kind == "f" else values
        if numbers.min(initial=0) < -1:
            raise DataError(f"y: labels must be class numbers from 0 (-1: unlabelled), got {int(numbers.min())}")
        return numbers.astype(np.int64)
    known = np.array([v is not None and v == v for v in values.tolist()])  # v != v: NaN
    codes = np.full(n, -1, np.int64)
    if known.any():
        codes[known] = np.unique(values[known].astype(str), return_inverse=True)[1]
    return codes


def file_source(X: str | os.PathLike) -> dict[str, Any]:
    """The data section that reads the files ``X`` names (relative paths from the current directory)."""
    text = os.fspath(X)
    if "://" not in text:
        text = str(Path(text).expanduser().absolute())
    return {"source": "parquet", "path": text}
