"""Frozen dataclasses of numpy arrays returned by every public compute function.

Torch stays inside lossviz; figures and the UI only ever see these. Grid convention, fixed once here:
`Surface.z[i, j]` is the value at `(xs[j], ys[i])`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Curve:
    """y(x) for one loss: values, derivative and any extra named series on the same x."""

    name: str  # registry key (used for colour)
    x: np.ndarray  # (P,)
    y: np.ndarray  # (P,)
    dy: np.ndarray | None = None  # (P,) derivative along the axis, by autograd
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    label: str = ""  # legend text; the loss title when empty


@dataclass(frozen=True)
class Surface:
    """A scalar field on a grid: z[i, j] is the value at (xs[j], ys[i])."""

    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    z: np.ndarray  # (ny, nx)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other fields on the same grid
    label: str = ""

    def __post_init__(self) -> None:
        if self.z.shape[:2] != (len(self.ys), len(self.xs)):
            raise ValueError(f"z has shape {self.z.shape}, expected ({len(self.ys)}, {len(self.xs)}, ...)")


@dataclass(frozen=True)
class Projection:
    """A 2-D PCA view of >2-D features, fitted on the training split: z = (x - mean) @ components.T."""

    components: np.ndarray  # (2, D) orthonormal rows
    mean: np.ndarray  # (D,)
    explained_variance_ratio: np.ndarray  # (2,)
    axis_names: tuple[str, str]  # e.g. ("PC1 (37%)", "PC2 (19%)")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, 2) coordinates in the PCA plane."""
        return (np.asarray(X) - self.mean) @ self.components.T

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """(N, 2) plane coordinates -> (N, D) points on the plane (for decision surfaces)."""
        return self.mean + np.asarray(Z) @ self.components


@dataclass(frozen=True)
class Dataset:
    """A train/test split. y_train holds the labels as corrupted; y_test is always clean.

    task is "binary" for 2 classes, "multiclass" for more, "regression" for real targets (n_classes = 0).
    """

    name: str
    task: str  # "binary" | "multiclass" | "regression"
    X_train: np.ndarray  # (N, D) float32
    y_train: np.ndarray  # (N,) int64 class ids (or float32 targets) after label noise / outliers
    y_train_clean: np.ndarray  # (N,) before corruption
    noisy_mask: np.ndarray  # (N,) bool, exactly where y_train != y_train_clean
    X_test: np.ndarray  # (M, D) float32
    y_test: np.ndarray  # (M,) clean
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]  # () for regression
    n_classes: int  # 0 for regression
    projection: Projection | None = None  # set when D > 2
    notes: tuple[str, ...] = ()  # what was done to the data (rows dropped, standardised, ...)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def class_counts(self) -> np.ndarray:
        """(K,) counts of the training labels as given (noisy)."""
        if not self.n_classes:
            return np.zeros(0, np.int64)
        return np.bincount(self.y_train, minlength=self.n_classes)

    def view_2d(self, X: np.ndarray) -> np.ndarray:
        """Features as (N, 2) plot coordinates: themselves when D <= 2 (a zero column for D = 1), else PCA."""
        X = np.asarray(X)
        if self.projection is not None:
            return self.projection.transform(X)
        return X if X.shape[1] == 2 else np.column_stack([X[:, 0], np.zeros(len(X), X.dtype)])

    @property
    def axis_names(self) -> tuple[str, str]:
        """Names of the two plot axes (feature names, or PCA components with explained variance)."""
        if self.projection is not None:
            return self.projection.axis_names
        return (self.feature_names[0], self.feature_names[1] if len(self.feature_names) > 1 else "")


@dataclass(frozen=True)
class History:
    """One training run: per-epoch metrics (epoch 0 = at initialisation) and parameter snapshots.

    Regression runs store R^2 in train_acc / test_acc, the test mean squared error in test_nll, NaN in
    noisy_acc and ece. noisy_acc is the accuracy on the noisy subset against its noisy labels (NaN if none).
    """

    loss_name: str
    loss_params: dict[str, float]
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int | None
    seed: int
    epochs: np.ndarray  # (E+1,) 0..E (fewer when the run diverged)
    train_loss: np.ndarray  # (E+1,) loss on the whole training set (given labels) after each epoch
    train_acc: np.ndarray  # (E+1,) accuracy on the given (possibly noisy) training labels
    noisy_acc: np.ndarray  # (E+1,) memorisation: accuracy on the noisy subset against its noisy labels
    test_acc: np.ndarray  # (E+1,)
    test_nll: np.ndarray  # (E+1,)
    ece: np.ndarray  # (E+1,) test expected calibration error, 15 equal-width bins
    snapshot_epochs: np.ndarray  # (S,)
    snapshots: tuple[dict[str, np.ndarray], ...]  # S parameter dicts keyed like model.named_parameters()
    final_state: dict[str, np.ndarray]  # model.state_dict() at the end (last finite state if diverged)
    diverged: bool
    message: str
    seconds: float

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's metrics by name."""
        keys = ("train_loss", "train_acc", "noisy_acc", "test_acc", "test_nll", "ece")
        return {k: float(getattr(self, k)[-1]) for k in keys}


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram bins (equal width on the top-label confidence): NaN where a bin is empty."""

    edges: np.ndarray  # (B+1,) 0..1
    confidence: np.ndarray  # (B,) mean confidence per bin
    accuracy: np.ndarray  # (B,) accuracy per bin
    counts: np.ndarray  # (B,) samples per bin
    ece: float
    mce: float


@dataclass(frozen=True)
class PresetResult:
    """Every loss of a preset trained on the same data from the same initialisation."""

    preset: str  # key in lossviz.presets.PRESETS
    seed: int
    dataset: Dataset
    labels: tuple[str, ...]  # one legend label per loss, e.g. "gce (q=0.7)"
    histories: tuple[History, ...]  # same order as labels


@dataclass(frozen=True)
class Interpolation:
    """Loss along the straight line (1 - alpha)·theta_a + alpha·theta_b between two solutions."""

    alphas: np.ndarray  # (P,)
    loss: np.ndarray  # (P,) mean loss at each alpha
    accuracy: np.ndarray | None  # (P,) None for regression
    barrier: float  # max over alpha in [0, 1] of loss(alpha) - linear interpolation of the endpoint losses
    barrier_alpha: float  # where that maximum sits
    label: str = ""


@dataclass(frozen=True)
class TrajectoryPCA:
    """The two leading PCA directions of a training trajectory and its coordinates (Li et al. 2018)."""

    # unit vectors keyed like named_parameters
    directions: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
    explained_variance: np.ndarray  # (2,) fraction of the trajectory's variance along each direction
    coords: np.ndarray  # (T, 2) theta_t - theta_final projected on the directions (final at the origin)


@dataclass(frozen=True)
class Spectrum:
    """Hessian eigenvalue density by stochastic Lanczos quadrature, with the top eigenvalues and trace."""

    grid: np.ndarray  # (M,) eigenvalue axis
    density: np.ndarray  # (M,) Gaussian-broadened density, integrates to ~1
    nodes: np.ndarray  # (R, m) Ritz values of each Lanczos run (padded with 0 where a run stopped early)
    weights: np.ndarray  # (R, m) quadrature weights, each row sums to 1 (0 on padding)
    eigenvalues: np.ndarray  # (k,) largest Ritz values over all runs, descending
    trace: float  # n_params · mean over runs of sum(weights · nodes)
    n_params: int
    sigma: float  # Gaussian broadening width


@dataclass(frozen=True)
class Sharpness:
    """Top Hessian eigenvalue along training, to compare with 2 / learning rate (edge of stability)."""

    steps: np.ndarray  # (T,) epoch or step of each snapshot
    top_eigenvalue: np.ndarray  # (T,)
    threshold: float  # 2 / lr (NaN when no learning rate was given)
    label: str = ""
