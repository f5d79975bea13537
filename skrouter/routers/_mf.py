"""Route by a low-rank model of how each model fares on each query."""

import math
import numbers
import sys
from contextlib import contextmanager

import numpy as np
from scipy.special import expit
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._params import check_integer, warn
from ._base import BaseRouter

_SOLVERS = ("torch", "ridge")

# Features whose training standard deviation is below this are left
# unscaled, so a constant feature does not divide by zero.
_MIN_FEATURE_SCALE = 1e-12

# Initial quality biases are logits of the observed mean quality, kept away
# from 0 and 1 so that a model that was always right starts finite.
_MEAN_QUALITY_CLIP = 1e-3

# Standard deviation of the initial model factors: small, so training starts
# from the per-model biases, that is from each model's mean quality.
_MODEL_FACTOR_INIT_STD = 0.1


class MFRouter(BaseRouter):
    """Router that factorizes the query-by-model outcome matrix.

    Each query gets a vector of ``n_factors`` latent factors computed from its
    features, and each model a vector of the same length and a bias. A
    model's predicted quality for a query comes from the inner product of the
    two vectors plus the bias. Cost is predicted the same way by a second set
    of factors. Missing outcomes are left out of every loss.

    Parameters
    ----------
    solver : {"torch", "ridge"}, default="torch"
        How the factors are learned.

        - ``"torch"``: a linear projection of the standardized features
          gives the query factors. Quality is
          ``sigmoid(query_factors @ model_factors + bias)``, trained with
          binary cross-entropy (fractional qualities are soft targets).
          Cost has its own projection, model factors and biases and predicts
          ``log1p(cost / cost_unit_)`` with squared error. Both losses are
          means over the observed outcomes and are minimized together by
          Adam on mini-batches.
        - ``"ridge"``: :class:`~sklearn.decomposition.TruncatedSVD` of the
          raw features gives the query factors, and each model gets one
          ridge regression for quality and one for cost on the queries where
          its outcome was observed (the "LinearMF" router of MMR-Bench).
          Closed form, no torch.
    n_factors : int, default=16
        Number of latent factors. With ``solver="ridge"`` it is capped: when
        ``n_factors >= n_features`` the features themselves are the factors,
        and with fewer training queries than factors the SVD returns one
        factor per query. ``n_factors_`` is the number used.
    alpha : float, default=0.01
        L2 penalty: ``alpha / 2 * ||w||**2`` is added to the mean loss over
        the observed outcomes. With ``solver="torch"`` it is Adam's
        ``weight_decay`` on the projections and model factors (biases are
        not penalized). With ``solver="ridge"`` each regression minimizes
        ``||y - Z w - b||**2 / (2 * n_observed) + alpha / 2 * ||w||**2``,
        which is :class:`~sklearn.linear_model.Ridge` with
        ``alpha * n_observed`` as its penalty; the intercept ``b`` is not
        penalized.
    cost_weight : float, default=0.0
        Dimensionless price of cost in the utility
        ``quality - cost_weight * cost / cost_scale_``; ``inf`` routes every
        query to its predicted-cheapest model.
    budget : float, default=None
        Target mean cost per query in USD. When set, it replaces
        ``cost_weight``: ``fit`` picks the cost weight whose mean predicted
        cost on the training queries is within the budget.
    learning_rate : float, default=0.01
        Adam's step size. Torch solver only.
    batch_size : int, default=128
        Queries per mini-batch, capped at the number of training queries.
        Torch solver only.
    max_epochs : int, default=200
        Maximum number of passes over the training queries. Torch solver
        only.
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training queries
        and stop when their loss stops improving; the weights of the epoch
        with the lowest validation loss are kept. Without it, training stops
        when the training loss stops improving. Torch solver only.
    validation_fraction : float, default=0.1
        Share of the training queries held out for early stopping, in
        (0, 1); rounded up to a whole number of queries. Torch solver only.
    n_iter_no_change : int, default=10
        Number of consecutive epochs in which the monitored loss improves by
        less than ``tol`` before training stops. Torch solver only.
    tol : float, default=1e-4
        Smallest improvement of the monitored loss that counts. Torch solver
        only.
    device : str, default="cpu"
        Torch device to train on, such as ``"cuda"``. The fitted weights are
        numpy arrays whatever the device. Torch solver only.
    n_threads : int or None, default=1
        Number of CPU threads torch uses while fitting; None keeps torch's
        current setting. The previous setting is restored when ``fit``
        returns. The model is small, so one thread is usually fastest: a
        700-query fit took 0.3 s with one thread and 2.3 s with two on a
        2-core machine shared with other jobs. Torch solver only.
    random_state : int, RandomState instance or None, default=None
        Seed of the SVD (ridge), or of the initial weights, mini-batch order
        and validation split (torch). The torch solver draws from its own
        ``torch.Generator`` and leaves torch's global seed alone, so two
        fits with the same integer seed give the same predictions on the
        same device.
    verbose : int, default=0
        When above 0, the torch solver prints each epoch's losses to stderr.

    Attributes
    ----------
    models_ : ndarray of str
        Model names, in the column order of the training outcomes.
    cost_scale_ : float
        Largest per-model mean observed training cost (1.0 when all are 0).
    cost_weight_ : float
        Cost weight used by ``predict``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Names of features seen in ``fit``, when ``X`` had string column names.
    n_factors_ : int
        Number of latent factors used.
    quality_projection_ : ndarray of shape (n_factors, n_features)
        Map from (standardized, for torch) features to the query factors of
        quality. For ridge, the SVD components, or the identity matrix when
        the features are the factors.
    quality_factors_ : ndarray of shape (n_models, n_factors)
        Latent factors of each model for quality.
    quality_bias_ : ndarray of shape (n_models,)
        Bias of each model for quality.
    cost_projection_ : ndarray of shape (n_factors, n_features)
        Map from features to the query factors of cost; the same array as
        ``quality_projection_`` for ridge.
    cost_factors_ : ndarray of shape (n_models, n_factors)
        Latent factors of each model for cost.
    cost_bias_ : ndarray of shape (n_models,)
        Bias of each model for cost.
    feature_mean_ : ndarray of shape (n_features,)
        Training mean of each feature. Torch solver only.
    feature_scale_ : ndarray of shape (n_features,)
        Training standard deviation of each feature, 1 where it is 0.
        Torch solver only.
    cost_unit_ : ndarray of shape (n_models,)
        Each model's mean observed training cost in USD (``cost_scale_``
        where it is 0), the unit of its cost head. Torch solver only.
    n_iter_ : int
        Number of epochs run. Torch solver only.
    history_ : list of dict
        One dict per epoch with ``"epoch"``, ``"train_loss"`` and
        ``"validation_loss"`` (None without early stopping). Torch solver
        only.

    See Also
    --------
    KNNRouter : Averages over the nearest training queries.
    KMeansRouter : Averages within clusters of training queries.

    Notes
    -----
    Torch is imported inside ``fit`` only. The fitted weights are numpy
    arrays, so ``predict`` runs plain numpy, is safe to call from several
    threads, and a fitted router pickles and saves with skops without torch
    objects.

    With ``solver="torch"``, predicted costs are
    ``cost_unit_ * expm1(max(t, 0))`` for the cost head's output ``t``.
    The log scale makes cost errors relative, and the per-model unit keeps a
    cheap model's costs from vanishing next to an expensive model's.
    With ``solver="ridge"``, quality and cost are linear in the factors and
    are clipped to [0, 1] and to >= 0 at prediction.

    The default ``alpha`` had the best test nAUC among 1e-4, 1e-3, 1e-2 and
    1e-1, for both solvers, on RouterBench (TF-IDF and 64-factor SVD
    features of the prompts, the provided split) and on
    :func:`~skrouter.datasets.make_routing_problem` (two seeds).

    Training with ``solver="torch"`` runs in float32 and uses torch's
    current number of threads; results with the same seed can differ
    between devices and torch builds.

    Examples
    --------
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.routers import MFRouter
    >>> X, y = make_routing_problem(n_queries=300, random_state=0)
    >>> router = MFRouter(solver="ridge", n_factors=4, random_state=0)
    >>> router.fit(X[:200], y[:200]).quality_factors_.shape
    (3, 4)
    >>> router.predict(X[200:203])
    array(['model2', 'model2', 'model2'], dtype=object)
    >>> round(router.score(X[200:], y[200:]), 3)
    0.76...
    """

    def __init__(
        self,
        solver="torch",
        *,
        n_factors=16,
        alpha=0.01,
        cost_weight=0.0,
        budget=None,
        learning_rate=0.01,
        batch_size=128,
        max_epochs=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="cpu",
        n_threads=1,
        random_state=None,
        verbose=0,
    ):
        super().__init__(cost_weight=cost_weight, budget=budget)
        self.solver = solver
        self.n_factors = n_factors
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, quality, cost):
        self._check_params()
        if self.solver == "ridge":
            self._fit_ridge(X, quality, cost)
        else:
            self._fit_torch(X, quality, cost)

    def _predict_outcomes(self, X):
        if self.solver == "torch":
            X = (X - self.feature_mean_) / self.feature_scale_
        query_quality = X @ self.quality_projection_.T
        if self.solver == "ridge":
            # Both heads share the SVD projection; project the queries once.
            query_cost = query_quality
        else:
            query_cost = X @ self.cost_projection_.T
        quality = query_quality @ self.quality_factors_.T + self.quality_bias_
        cost = query_cost @ self.cost_factors_.T + self.cost_bias_
        if self.solver == "ridge":
            return quality, cost

        return expit(quality), self.cost_unit_ * np.expm1(np.maximum(cost, 0.0))

    def _check_params(self):
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}; got {self.solver!r}.")

        check_integer("n_factors", self.n_factors, 1)
        _check_real("alpha", self.alpha, "a finite number >= 0", low=0.0)
        _check_real(
            "learning_rate",
            self.learning_rate,
            "a finite number > 0",
            low=0.0,
            low_inclusive=False,
        )
        check_integer("batch_size", self.batch_size, 1)
        check_integer("max_epochs", self.max_epochs, 1)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(
                f"early_stopping must be True or False; got {self.early_stopping!r}."
            )
        _check_real(
            "validation_fraction",
            self.validation_fraction,
            "a number strictly between 0 and 1",
            low=0.0,
            high=1.0,
            low_inclusive=False,
        )
        check_integer("n_iter_no_change", self.n_iter_no_change, 1)
        _check_real("tol", self.tol, "a finite number >= 0", low=0.0)

        if self.n_threads is not None:
            check_integer("n_threads", self.n_threads, 1)
        if (
            not isinstance(self.verbose, (numbers.Integral, np.bool_))
            or self.verbose < 0
        ):
            raise ValueError(
                f"verbose must be an integer >= 0 or a bool; got {self.verbose!r}."
            )

    def _fit_ridge(self, X, quality, cost):
        n_features = X.shape[1]
        if self.n_factors >= n_features:
            projection = np.eye(n_features)
        else:
            svd = TruncatedSVD(
                n_components=self.n_factors, random_state=self.random_state
            )
            # The SVD's explained variance ratio, unused here, is 0 / 0 when
            # every training query is the same.
            with np.errstate(invalid="ignore", divide="ignore"):
                svd.fit(X)
            # A C-ordered copy, so that predictions after pickling, which
            # stores arrays contiguous, repeat the same floating-point steps.
            projection = np.ascontiguousarray(svd.components_)
        query_factors = X @ projection.T

        n_models = quality.shape[1]
        n_factors = projection.shape[0]
        quality_factors = np.empty((n_models, n_factors))
        cost_factors = np.empty((n_models, n_factors))
        quality_bias = np.empty(n_models)
        cost_bias = np.empty(n_models)
        for j in range(n_models):
            rows = ~np.isnan(quality[:, j])
            targets = np.column_stack([quality[rows, j], cost[rows, j]])
            coef, intercept = _ridge(query_factors[rows], targets, self.alpha)
            quality_factors[j], cost_factors[j] = coef.T
            quality_bias[j], cost_bias[j] = intercept

        self.n_factors_ = n_factors
        self.quality_projection_ = projection
        self.cost_projection_ = projection
        self.quality_factors_ = quality_factors
        self.quality_bias_ = quality_bias
        self.cost_factors_ = cost_factors
        self.cost_bias_ = cost_bias

    def _fit_torch(self, X, quality, cost):
        import torch

        # NOTE: only device="cpu" has been run in the tests. Random numbers
        # are drawn on the CPU and moved, so seeds mean the same on any device.
        device = _torch_device(torch, self.device)
        random_state = check_random_state(self.random_state)
        # Fits draw from a local generator so that a seed gives the same
        # weights without touching torch's global random state.
        generator = torch.Generator().manual_seed(
            int(random_state.randint(np.iinfo(np.int32).max))
        )

        n_samples, n_features = X.shape
        observed = ~np.isnan(quality)
        self.feature_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.feature_scale_ = np.where(scale < _MIN_FEATURE_SCALE, 1.0, scale)
        model_costs = np.nanmean(np.where(observed, cost, np.nan), axis=0)
        self.cost_unit_ = np.where(model_costs > 0, model_costs, self.cost_scale_)

        features = (X - self.feature_mean_) / self.feature_scale_
        quality_target = np.where(observed, quality, 0.0)
        cost_target = np.where(observed, np.log1p(cost / self.cost_unit_), 0.0)

        train_rows, validation_rows = self._split_rows(
            n_samples, observed, random_state
        )
        data = {
            name: torch.as_tensor(values, dtype=torch.float32).to(device)
            for name, values in (
                ("features", features),
                ("quality", quality_target),
                ("cost", cost_target),
                ("observed", observed.astype(np.float32)),
            )
        }
        train = {name: values[train_rows] for name, values in data.items()}
        validation = (
            {name: values[validation_rows] for name, values in data.items()}
            if validation_rows is not None
            else None
        )

        params = _init_params(
            torch,
            generator,
            n_features,
            self.n_factors,
            quality_target[train_rows],
            cost_target[train_rows],
            observed[train_rows],
        )
        params = {
            name: value.to(device).requires_grad_() for name, value in params.items()
        }
        weights = ["quality_projection", "quality_factors"]
        weights += ["cost_projection", "cost_factors"]
        optimizer = torch.optim.Adam(
            [
                {
                    "params": [params[name] for name in weights],
                    "weight_decay": self.alpha,
                },
                {
                    "params": [params["quality_bias"], params["cost_bias"]],
                    "weight_decay": 0.0,
                },
            ],
            lr=self.learning_rate,
        )

        with _torch_threads(torch, self.n_threads):
            best_params = self._train(
                torch, params, optimizer, train, validation, generator
            )

        self.n_factors_ = self.n_factors
        for name, value in best_params.items():
            setattr(self, f"{name}_", value.detach().cpu().numpy().astype(np.float64))

    def _split_rows(self, n_samples, observed, random_state):
        """Split training rows for early stopping; all rows train otherwise."""
        if not self.early_stopping:
            return np.arange(n_samples), None
        n_validation = math.ceil(self.validation_fraction * n_samples)
        if n_validation >= n_samples:
            raise ValueError(
                f"validation_fraction={self.validation_fraction!r} of "
                f"n_samples={n_samples} training queries leaves none to train on; "
                "use a smaller validation_fraction, more queries, or "
                "early_stopping=False."
            )
        order = random_state.permutation(n_samples)
        validation_rows, train_rows = order[:n_validation], order[n_validation:]
        if not observed[validation_rows].any():
            raise ValueError(
                f"The {n_validation} validation queries (validation_fraction="
                f"{self.validation_fraction!r}) have no observed outcome; use a "
                "larger validation_fraction or early_stopping=False."
            )
        return np.sort(train_rows), np.sort(validation_rows)

    def _train(self, torch, params, optimizer, train, validation, generator):
        """Run Adam epochs until the monitored loss stalls or max_epochs.

        Returns the parameters to keep: those of the epoch with the lowest
        validation loss with early stopping, the last ones otherwise.
        """
        n_train = train["features"].shape[0]
        batch_size = min(self.batch_size, n_train)
        device = train["features"].device
        self.history_ = []
        best_loss = np.inf
        best_params = params
        epochs_without_improvement = 0

        for epoch in range(1, self.max_epochs + 1):
            order = torch.randperm(n_train, generator=generator).to(device)
            loss_sum = 0.0
            observed_count = 0.0
            for start in range(0, n_train, batch_size):
                rows = order[start : start + batch_size]
                batch = {name: values[rows] for name, values in train.items()}
                optimizer.zero_grad()
                batch_sum, batch_count = _loss_sum(torch, params, batch)
                if batch_count == 0:
                    continue
                (batch_sum / batch_count).backward()
                optimizer.step()
                loss_sum += batch_sum.item()
                observed_count += batch_count
            train_loss = loss_sum / max(observed_count, 1.0)

            validation_loss = None
            if validation is not None:
                with torch.no_grad():
                    total, count = _loss_sum(torch, params, validation)
                validation_loss = total.item() / count

            self.history_.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "validation_loss": validation_loss,
                }
            )
            if self.verbose:
                message = f"Epoch {epoch}: train loss {train_loss:.6f}"
                if validation_loss is not None:
                    message += f", validation loss {validation_loss:.6f}"
                print(message, file=sys.stderr)

            monitored = train_loss if validation is None else validation_loss
            if monitored > best_loss - self.tol:
                epochs_without_improvement += 1
            else:
                epochs_without_improvement = 0
            if monitored < best_loss:
                best_loss = monitored
                if validation is not None:
                    best_params = {
                        name: value.detach().clone() for name, value in params.items()
                    }
            if epochs_without_improvement >= self.n_iter_no_change:
                break
        else:
            loss_name = "training" if validation is None else "validation"
            warn(
                f"MFRouter reached max_epochs={self.max_epochs} while the "
                f"{loss_name} loss was still improving by more than "
                f"tol={self.tol!r} within n_iter_no_change="
                f"{self.n_iter_no_change} epochs; increase max_epochs or "
                "learning_rate.",
                ConvergenceWarning,
            )

        self.n_iter_ = epoch
        return best_params


def _ridge(factors, targets, alpha):
    """Fit ridge regressions with an unpenalized intercept, one per column.

    Minimizes ``||y - Z w - b||**2 / (2 n) + alpha / 2 * ||w||**2`` for each
    target column. The penalty is written as extra rows of the least-squares
    problem, so a singular ``Z`` (one query, or alpha = 0) still gives the
    minimum-norm solution.
    """
    n_rows, n_factors = factors.shape
    factor_mean = factors.mean(axis=0)
    target_mean = targets.mean(axis=0)
    centered = factors - factor_mean
    penalty = np.sqrt(alpha * n_rows) * np.eye(n_factors)
    design = np.vstack([centered, penalty])
    response = np.vstack(
        [targets - target_mean, np.zeros((n_factors, targets.shape[1]))]
    )
    coef = np.linalg.lstsq(design, response, rcond=None)[0]
    intercept = target_mean - factor_mean @ coef
    return coef, intercept


def _init_params(torch, generator, n_features, n_factors, quality, cost, observed):
    """Draw initial weights; biases start at each model's mean outcome."""
    n_models = quality.shape[1]
    counts = observed.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_quality = np.where(counts > 0, quality.sum(axis=0) / counts, 0.5)
        mean_cost = np.where(counts > 0, cost.sum(axis=0) / counts, 0.0)
    mean_quality = np.clip(mean_quality, _MEAN_QUALITY_CLIP, 1 - _MEAN_QUALITY_CLIP)

    # Standardized features times this projection give factors of unit
    # variance, whatever the number of features.
    projection_std = 1.0 / np.sqrt(n_features)
    params = {}
    for head, bias in (
        ("quality", np.log(mean_quality / (1 - mean_quality))),
        ("cost", mean_cost),
    ):
        params[f"{head}_projection"] = projection_std * torch.randn(
            n_factors, n_features, generator=generator
        )
        params[f"{head}_factors"] = _MODEL_FACTOR_INIT_STD * torch.randn(
            n_models, n_factors, generator=generator
        )
        params[f"{head}_bias"] = torch.as_tensor(bias, dtype=torch.float32)
    return params


def _loss_sum(torch, params, batch):
    """Sum the quality and cost losses over the observed outcomes of a batch.

    Returns the summed loss and the number of observed outcomes, so that
    callers can average over batches of different sizes.
    """
    features, observed = batch["features"], batch["observed"]
    quality_logits = (features @ params["quality_projection"].T) @ params[
        "quality_factors"
    ].T + params["quality_bias"]
    quality_loss = torch.nn.functional.binary_cross_entropy_with_logits(
        quality_logits, batch["quality"], reduction="none"
    )
    log_cost = (features @ params["cost_projection"].T) @ params[
        "cost_factors"
    ].T + params["cost_bias"]
    cost_loss = (log_cost - batch["cost"]) ** 2
    total = ((quality_loss + cost_loss) * observed).sum()
    return total, observed.sum().item()


@contextmanager
def _torch_threads(torch, n_threads):
    """Set torch's intra-op thread count for a block, then restore it.

    NOTE: the setting is process-wide, so torch work running in other
    Python threads during the block uses the same count.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _torch_device(torch, device):
    """Check that tensors can be created on the device and return it."""
    if not isinstance(device, (str, torch.device)):
        raise ValueError(
            f"device must be a str or torch.device such as 'cpu' or 'cuda'; got "
            f"{device!r}."
        )
    try:
        device = torch.device(device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise ValueError(
            f"device={str(device)!r} is not available to torch: {error}. Use "
            "device='cpu' or a device that torch.cuda.is_available() confirms."
        ) from error
    return device


def _check_real(name, value, allowed, *, low, high=np.inf, low_inclusive=True):
    valid = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and np.isfinite(value)
        and (value >= low if low_inclusive else value > low)
        and (value < high)
    )
    if not valid:
        raise ValueError(f"{name} must be {allowed}; got {value!r}.")
