"""Frozen dataclasses of numpy arrays returned by every public compute function.

Torch stays inside lossviz; figures and the UI only ever see these. Every field is typed (no string-keyed
extras). Grid convention, fixed once here: `Surface.z[i, j]` is the value at `(xs[j], ys[i])`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_series(owner: str, length: int, **series: np.ndarray | None) -> None:
    """Every optional series of a result must match its axis in length."""
    for name, values in series.items():
        if values is not None and np.shape(values)[:1] != (length,):
            raise ValueError(f"{owner}.{name} has shape {np.shape(values)}, expected ({length},)")


@dataclass(frozen=True)
class Curve:
    """y(x) for one loss: values, derivative and the optional typed series some views add on the same x."""

    name: str  # registry key (used for colour)
    x: np.ndarray  # (P,)
    y: np.ndarray  # (P,)
    dy: np.ndarray | None = None  # (P,) derivative along the axis, by autograd
    label: str = ""  # legend text; the loss title when empty
    weight: np.ndarray | None = None  # (P,) relative sample weight |grad| / |reference loss grad| (shapes)
    p_y: np.ndarray | None = None  # (P,) true-class probability of a multiclass shape curve
    margin: np.ndarray | None = None  # (P,) logit margin z_y - z_k of a multiclass shape curve
    accuracy: np.ndarray | None = None  # (P,) accuracy at each x of a landscape line (classification)
    param_value: float | None = None  # the swept hyperparameter's value (sweep_curves)
    batch: bool = False  # a batch-level loss: each point scores a whole batch, not one sample

    def __post_init__(self) -> None:
        _check_series(
            "Curve", len(self.x), y=self.y, dy=self.dy, weight=self.weight, p_y=self.p_y,
            margin=self.margin, accuracy=self.accuracy,
        )  # fmt: skip


@dataclass(frozen=True)
class Trajectory:
    """A training run's path projected onto a 2-D plane of parameter space: one point per snapshot."""

    name: str  # registry key of the loss that trained it (used for colour)
    x: np.ndarray  # (T,) coordinate along the first direction (final weights at the origin)
    y: np.ndarray  # (T,) coordinate along the second direction
    epochs: np.ndarray  # (T,) epoch of each snapshot, 0 = initialisation
    label: str = "training trajectory"

    def __post_init__(self) -> None:
        _check_series("Trajectory", len(self.x), y=self.y, epochs=self.epochs)


@dataclass(frozen=True)
class Surface:
    """A scalar field on a grid: z[i, j] is the value at (xs[j], ys[i]); optional fields on the same grid."""

    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    z: np.ndarray  # (ny, nx)
    label: str = ""
    accuracy: np.ndarray | None = None  # (ny, nx) accuracy at each node of a loss landscape (classification)
    probs: np.ndarray | None = None  # (ny, nx, K) probability vector per node: the simplex's (p_y, p_2, p_3)

    def __post_init__(self) -> None:
        grid = (len(self.ys), len(self.xs))
        if np.shape(self.z) != grid:
            raise ValueError(f"z has shape {np.shape(self.z)}, expected {grid}")
        if self.accuracy is not None and np.shape(self.accuracy) != grid:
            raise ValueError(f"accuracy has shape {np.shape(self.accuracy)}, expected {grid}")
        if self.probs is not None and (np.ndim(self.probs) != 3 or np.shape(self.probs)[:2] != grid):
            raise ValueError(f"probs has shape {np.shape(self.probs)}, expected ({grid[0]}, {grid[1]}, K)")


@dataclass(frozen=True)
class DecisionMap:
    """Class probabilities of a classifier on a grid: proba[i, j] is the (K,) vector at (xs[j], ys[i])."""

    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    proba: np.ndarray  # (ny, nx, K), K >= 2, rows summing to 1
    label: str = ""

    def __post_init__(self) -> None:
        grid = (len(self.ys), len(self.xs))
        if np.ndim(self.proba) != 3 or np.shape(self.proba)[:2] != grid or np.shape(self.proba)[2] < 2:
            raise ValueError(
                f"proba has shape {np.shape(self.proba)}, expected ({grid[0]}, {grid[1]}, K >= 2)"
            )

    @property
    def n_classes(self) -> int:
        return int(self.proba.shape[2])

    @property
    def predicted(self) -> np.ndarray:
        """(ny, nx) the most probable class at each node."""
        return self.proba.argmax(-1)

    @property
    def confidence(self) -> np.ndarray:
        """(ny, nx) the top-class probability at each node, in [1/K, 1]."""
        return self.proba.max(-1)


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
    Embedding runs store the loss on fixed views of the training set in train_loss, nearest-class-mean
    accuracies of the unit embeddings in train_acc / noisy_acc / test_acc, NaN in test_nll and ece.
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
    # Wang & Isola (2020) on the test split, for embedding runs (NaN for the other tasks; None when built
    # without them): E||f(x) - f(x')||^2 over two views of each point, log E exp(-2 ||f(x) - f(y)||^2)
    alignment: np.ndarray | None = None  # (E+1,)
    uniformity: np.ndarray | None = None  # (E+1,)

    def __post_init__(self) -> None:
        _check_series("History", len(self.epochs), alignment=self.alignment, uniformity=self.uniformity)

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's metrics by name (alignment and uniformity when recorded)."""
        keys = ["train_loss", "train_acc", "noisy_acc", "test_acc", "test_nll", "ece"]
        keys += [k for k in ("alignment", "uniformity") if getattr(self, k) is not None]
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


@dataclass(frozen=True)
class TraceEstimate:
    """tr(H) with its standard error; float(estimate) is the value, so it stands in for a plain float."""

    value: float
    stderr: float  # standard error of the mean of the stochastic part (0 when exact; NaN from one probe)
    method: str  # "exact" (unit basis), "hutch++" (Meyer et al. 2021) or "hutchinson"
    n_matvecs: int  # Hessian-vector products spent

    def __float__(self) -> float:
        return float(self.value)


# ------------------------------------------------------- calibration (lossviz.metrics, lossviz.calibration)


@dataclass(frozen=True)
class BinnedReliability(Reliability):
    """Reliability bins of either binning: equal width on [0, 1], or equal mass (edges at quantiles).

    mode "top_label": confidence max_k p_k against [argmax = label]; mode "positive" (binary): P(class 1)
    against [label = 1], as scikit-learn's calibration_curve. Bin b holds (edges[b], edges[b+1]].
    """

    binning: str = "width"  # "width" | "mass"
    mode: str = "top_label"  # "top_label" | "positive"

    def __post_init__(self) -> None:
        _check_series(
            "BinnedReliability", len(self.counts), confidence=self.confidence, accuracy=self.accuracy
        )


@dataclass(frozen=True)
class ReliabilityBand:
    """Bootstrap percentile interval of each bin's accuracy; bins fixed on the full sample, NaN if empty."""

    edges: np.ndarray  # (B+1,)
    confidence: np.ndarray  # (B,) mean confidence per bin on the full sample
    accuracy: np.ndarray  # (B,) accuracy per bin on the full sample
    low: np.ndarray  # (B,) lower percentile of the bootstrap accuracies
    high: np.ndarray  # (B,) upper percentile
    level: float  # e.g. 0.9 for the 5th..95th percentiles
    n_boot: int
    seed: int
    binning: str = "width"  # "width" | "mass"
    mode: str = "top_label"  # "top_label" | "positive"

    def __post_init__(self) -> None:
        _check_series(
            "ReliabilityBand", len(self.confidence), accuracy=self.accuracy, low=self.low, high=self.high
        )


@dataclass(frozen=True)
class SmoothCalibration:
    """Smooth ECE (Błasiok & Nakkiran, 2023) with its kernel-smoothed reliability curve and density."""

    error: float  # smECE at sigma
    sigma: float  # kernel bandwidth: the fixed point sigma* = smECE_sigma* unless one was given
    t: np.ndarray  # (P,) confidence axis, 0..1
    accuracy: np.ndarray  # (P,) smoothed accuracy t + r_hat(t); NaN where the density vanishes
    density: np.ndarray  # (P,) kernel density of the confidences, integrates to 1 over [0, 1]
    mode: str = "top_label"  # "top_label" | "positive"

    def __post_init__(self) -> None:
        _check_series("SmoothCalibration", len(self.t), accuracy=self.accuracy, density=self.density)


@dataclass(frozen=True)
class ConfidenceHistogram:
    """Counts of the confidence in equal-width bins of [0, 1] (Guo et al. 2017's lower panel)."""

    edges: np.ndarray  # (B+1,) 0..1
    counts: np.ndarray  # (B,) samples per bin
    correct: np.ndarray  # (B,) of which correct (top_label) or positive (positive mode)
    mean_confidence: float
    accuracy: float  # overall accuracy (top_label) or frequency of class 1 (positive)
    mode: str = "top_label"

    def __post_init__(self) -> None:
        _check_series("ConfidenceHistogram", len(self.counts), correct=self.correct)


@dataclass(frozen=True)
class TemperatureScaling:
    """Temperature scaling (Guo et al., 2017): T fitted on one split, metrics before/after on another."""

    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    brier_before: float
    brier_after: float
    accuracy: float  # unchanged by T (argmax is invariant)
    before: BinnedReliability  # on the evaluation split, T = 1
    after: BinnedReliability  # on the evaluation split, logits / T
    n_fit: int
    n_eval: int
    name: str = ""  # registry key of the loss (colour)
    label: str = ""  # legend text; the name when empty


@dataclass(frozen=True)
class CalibrationMap:
    """f*(eta) = argmin_f eta L(f, 1) + (1 - eta) L(f, 0) of a binary loss, and its probability sigmoid(f*).

    [f_low, f_high] is the set of minimisers (to a relative tolerance); f_star is its midpoint, or its inner
    end when the set runs to the edge of the searched range [-f_range, f_range] (flagged in `unbounded`).
    """

    name: str  # registry key (colour)
    eta: np.ndarray  # (E,) conditional probability P(y = 1 | x), in (0, 1)
    f_star: np.ndarray  # (E,) the reported minimiser
    probability: np.ndarray  # (E,) sigmoid(f_star)
    f_low: np.ndarray  # (E,) smallest minimiser found
    f_high: np.ndarray  # (E,) largest minimiser found
    unbounded: np.ndarray  # (E,) bool: the minimisers reach ±f_range (the infimum may sit at ±infinity)
    f_range: float
    params: dict[str, float]  # the bound hyperparameters
    label: str = ""

    def __post_init__(self) -> None:
        _check_series(
            "CalibrationMap", len(self.eta), f_star=self.f_star, probability=self.probability,
            f_low=self.f_low, f_high=self.f_high, unbounded=self.unbounded,
        )  # fmt: skip


@dataclass(frozen=True)
class CalibrationPanel:
    """Everything the calibration figures show for one loss (lossviz.calibration.calibration_panel)."""

    name: str  # registry key (colour)
    equal_width: BinnedReliability
    equal_mass: BinnedReliability | None = None
    band: ReliabilityBand | None = None  # bootstrap band (of equal_width unless band.binning says mass)
    smooth: SmoothCalibration | None = None
    histogram: ConfidenceHistogram | None = None
    nll: float = float("nan")
    brier: float = float("nan")
    accuracy: float = float("nan")
    label: str = ""  # legend text; the name when empty


@dataclass(frozen=True)
class MarginCalibrationPanel:
    """A binary loss's calibration map with the positive-class reliability of a model trained with it."""

    calibration_map: CalibrationMap
    empirical: BinnedReliability | None = None  # reliability(..., mode="positive") of the trained model
    label: str = ""  # legend text; the map's label, then its name, when empty

    @property
    def name(self) -> str:
        return self.calibration_map.name


@dataclass(frozen=True)
class Plane:
    """Two directions in parameter space through a model's trained weights, and its trajectory in them."""

    d1: dict[str, np.ndarray]  # keyed like named_parameters()
    d2: dict[str, np.ndarray]
    trajectory: Trajectory  # snapshot coordinates (final weights at the origin)
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    axis_names: tuple[str, str]
    explained: np.ndarray | None  # (2,) PCA explained-variance ratio; None for random directions
    residual: float  # fraction of the trajectory's squared length the plane does not capture


@dataclass(frozen=True)
class Curvature:
    """Curvature of one model at its trained weights, and sharpness along its training."""

    eigenvalues: np.ndarray  # (k,) largest Hessian eigenvalues, descending
    trace: TraceEstimate  # tr(H) with its standard error (exact for small models)
    spectrum: Spectrum
    sharpness: Sharpness
    n_params: int


@dataclass(frozen=True)
class NeuralCollapse:
    """Neural-collapse measures NC1-NC4 of penultimate features (metrics.neural_collapse); 0 at collapse.

    Papyan, Han & Donoho (2020): Sigma_W averages over samples, Sigma_B over classes (unweighted by counts);
    `centre` says whether the global mean is the mean of the samples ("samples") or of the class means.
    """

    nc1: float  # tr(Sigma_W Sigma_B^+) / K; NaN when every class mean is the global mean
    nc2_equinorm: float  # std / mean of the centred class-mean norms
    nc2_equiangular: float  # std over pairs k != j of cos(mu_k - mu_G, mu_j - mu_G)
    nc2_max_angle: float  # mean over pairs of |cos + 1/(K-1)|: distance from the simplex-ETF angle
    nc3: float  # ||W/||W||_F - M/||M||_F||_F^2 with M the centred class means; NaN without W
    nc4: float  # fraction of samples whose nearest class mean disagrees with the classifier; NaN without one
    class_means: np.ndarray  # (K, D) uncentred
    global_mean: np.ndarray  # (D,)
    class_counts: np.ndarray  # (K,) samples per class
    cosines: np.ndarray  # (K, K) cosines of the centred class means (diagonal 1)
    centre: str = "samples"  # "samples" or "classes"
    nc2_equinorm_classifier: float = float("nan")  # the same three for the classifier rows W; NaN without W
    nc2_equiangular_classifier: float = float("nan")
    nc2_max_angle_classifier: float = float("nan")

    def __post_init__(self) -> None:
        k, d = np.shape(self.class_means) if np.ndim(self.class_means) == 2 else (-1, -1)
        if k < 2:
            raise ValueError(
                f"class_means must be (K, D) with K >= 2, got shape {np.shape(self.class_means)}"
            )
        for name, shape in (("global_mean", (d,)), ("class_counts", (k,)), ("cosines", (k, k))):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(
                    f"NeuralCollapse.{name} has shape {np.shape(getattr(self, name))}, expected {shape}"
                )

    @property
    def n_classes(self) -> int:
        return len(self.class_means)

    @property
    def centred_means(self) -> np.ndarray:
        """(K, D) class means minus the global mean."""
        return self.class_means - self.global_mean


@dataclass(frozen=True)
class GrokkingRun:
    """A full-batch modular-addition run (lossviz.grokking.train_grokking) recorded at log-spaced epochs.

    Prieto et al. (2025), "Grokking at the Edge of Numerical Stability": `collapse` is the fraction of
    training samples whose loss, in the run's dtype, is exactly 0 (Softmax Collapse); `zero_gradient` the
    stricter fraction whose whole gradient w.r.t. the logits is exactly 0.
    """

    p: int  # modulus: p^2 pairs (a, b), p classes
    train_fraction: float
    loss: str  # registry key: "cross_entropy" or "stablemax_ce"
    dtype: str  # "float32" or "float64": the model's, the data's and the loss's
    optimizer: str  # "adamw" or "perp_adamw"
    lr: float
    weight_decay: float
    seed: int
    n_train: int
    n_test: int
    epochs: np.ndarray  # (T,) int, 0 = initialisation, log-spaced up to the last epoch
    train_accuracy: np.ndarray  # (T,)
    test_accuracy: np.ndarray  # (T,)
    train_loss: np.ndarray  # (T,) mean training loss
    test_loss: np.ndarray  # (T,)
    collapse: np.ndarray  # (T,) fraction of training samples with a loss of exactly 0
    zero_gradient: np.ndarray  # (T,) fraction of training samples with an all-zero logit gradient
    logit_norm: np.ndarray  # (T,) mean L2 norm of the training samples' logit vectors
    weight_norm: np.ndarray  # (T,) L2 norm of all parameters together
    frequencies: np.ndarray  # (p//2 + 1,) k = 0..p//2
    spectrum: np.ndarray  # (p//2 + 1,) final embedding's DFT power per frequency, folded, sums to 1

    def __post_init__(self) -> None:
        _check_series(
            "GrokkingRun", len(self.epochs), train_accuracy=self.train_accuracy,
            test_accuracy=self.test_accuracy, train_loss=self.train_loss, test_loss=self.test_loss,
            collapse=self.collapse, zero_gradient=self.zero_gradient, logit_norm=self.logit_norm,
            weight_norm=self.weight_norm,
        )  # fmt: skip
        _check_series("GrokkingRun", self.p // 2 + 1, frequencies=self.frequencies, spectrum=self.spectrum)

    def first_epoch(self, series: str, threshold: float) -> int | None:
        """First recorded epoch at which `series` (e.g. "test_accuracy") reaches threshold; None if never."""
        values = np.asarray(getattr(self, series))
        hits = np.flatnonzero(values >= threshold)
        return int(self.epochs[hits[0]]) if len(hits) else None

    @property
    def memorised_epoch(self) -> int | None:
        """First recorded epoch with training accuracy 1."""
        return self.first_epoch("train_accuracy", 1.0)

    @property
    def grokked_epoch(self) -> int | None:
        """First recorded epoch with test accuracy >= 0.9."""
        return self.first_epoch("test_accuracy", 0.9)
