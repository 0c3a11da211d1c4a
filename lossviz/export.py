"""Export a landscape job's surfaces as HDF5 in the layout of the reference tool's surface files
(tomgoldstein/loss-landscape, for "Visualizing the Loss Landscape of Neural Nets", Li et al. 2018), so that
its plotting scripts (plot_2D.py) draw them. h5py is imported only here, when a file is written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lossviz.jobs import Job

SURFACES = ("train_loss", "train_acc", "test_loss", "test_acc")
ACCURACIES = ("train_acc", "test_acc")


def write_landscape_h5(path: str | os.PathLike[str], job: Job, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write xcoordinates, ycoordinates and the surfaces of a landscape job to path (atomically).

    The reference tool's layout: 1-D xcoordinates and ycoordinates, and each surface shaped
    (len(xcoordinates), len(ycoordinates)) holding, at [i, j], the value at (x[j], y[i]) (it fills the
    surface in the order of np.meshgrid(x, y).ravel(), and plot_2D.py contours it against that meshgrid).
    The grid is square, so this is lossviz's Surface convention unchanged. Accuracies are in percent, as
    the reference tool records them; losses are the mean of the job's own loss.
    """
    if job.kind != "landscape":
        raise ValueError(f"job.kind must be 'landscape' to export a surface, got {job.kind!r}")
    missing = [k for k in ("xcoordinates", "ycoordinates", "train_loss") if k not in arrays]
    if missing:
        raise ValueError(f"arrays lack {missing}: not the result of a landscape job")
    try:
        import h5py
    except ImportError:
        raise ValueError("HDF5 export needs h5py: pip install h5py") from None
    x, y = np.asarray(arrays["xcoordinates"]), np.asarray(arrays["ycoordinates"])
    if len(x) != len(y):
        raise ValueError(f"the grid must be square, got {len(x)} x {len(y)} points")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f["xcoordinates"] = x.astype(np.float64)
            f["ycoordinates"] = y.astype(np.float64)
            for name in SURFACES:
                if name in arrays:
                    values = np.asarray(
                        arrays[name], dtype=np.float64
                    )  # (len(y), len(x)) == (len(x), len(y))
                    f[name] = 100.0 * values if name in ACCURACIES else values
            f.attrs["lossviz_job"] = job.to_json()
            f.attrs["lossviz_digest"] = job.digest
            f.attrs["loss"] = job.loss.name
            f.attrs["accuracy_units"] = "percent"
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
