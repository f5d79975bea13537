"""Cost-quality plot of a router, with single models and the oracle beside it."""

import numpy as np
import pandas as pd

from .._outcomes import check_outcomes
from ..metrics._curve import _check_predictions, _check_sweep, _sweep, pareto_frontier
from ..metrics._scorer import _final_router
from ..metrics._scores import _mean_over_range

# Costs that span more than this ratio (largest over smallest positive cost),
# about 1.7 orders of magnitude, are drawn on a logarithmic axis: on a linear
# one, every point below 2 % of the largest cost piles up at zero.
LOG_SCALE_RATIO = 50.0

_XSCALES = ("auto", "linear", "log")

_MODEL_LABEL_FONTSIZE = 7


def _check_matplotlib(caller):
    """Import matplotlib, or raise an ImportError that says how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, which is not installed. Install it "
            'with: pip install "skrouter[plot]"'
        ) from exc


class CostQualityDisplay:
    """Cost-quality curve of a router, the single models and the oracle.

    The router's operating points are reduced to their Pareto frontier and
    drawn as a line with markers. Between frontier points the line is
    straight, because nAUC interpolates the frontier linearly (see
    :func:`skrouter.metrics.nauc_score`). Each single model is a labelled
    point, and the oracle (the curve of a router that knows the true
    outcomes) is a dashed line.

    By default the cost axis is logarithmic when the drawn costs span more
    than about two orders of magnitude (largest over smallest positive cost
    above 50), and symmetric-logarithmic, linear below the smallest positive
    cost, when one of them is 0.

    Create a display with :meth:`from_estimator` or :meth:`from_predictions`;
    the constructor only stores its arguments. Draw several routers on one
    axes by passing ``ax=display.ax_`` to the next call, with
    ``plot_models=False, plot_oracle=False`` so that the baselines are drawn
    once.

    Parameters
    ----------
    costs : ndarray of shape (n_points,)
        Mean true cost of each operating point of the router, in USD.
    qualities : ndarray of shape (n_points,)
        Mean true quality of each operating point.
    thresholds : ndarray of shape (n_points,), default=None
        Cost weights or caps of the operating points, as returned by
        :func:`skrouter.metrics.cost_quality_curve`. Stored, not drawn.
    nauc : float, default=None
        nAUC of the curve, shown in the legend when given.
    name : str, default=None
        Name of the router in the legend.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points the curve comes from.
    model_points : DataFrame, default=None
        Mean cost and quality of each single model, indexed by model name
        with columns ``"cost"`` and ``"quality"``, as returned by
        :func:`skrouter.metrics.single_model_points`.
    oracle_costs, oracle_qualities : ndarray of shape (n_oracle_points,), \
default=None
        Operating points of the oracle, as returned by
        :func:`skrouter.metrics.oracle_curve`.

    Attributes
    ----------
    frontier_costs_ : ndarray
        Costs of the drawn frontier points, increasing.
    frontier_qualities_ : ndarray
        Their qualities, strictly increasing.
    line_ : matplotlib Line2D
        The router's frontier.
    model_points_ : matplotlib PathCollection or None
        The single models' points, None when they are not drawn.
    model_labels_ : list of matplotlib Annotation
        The names written beside the single models' points.
    oracle_line_ : matplotlib Line2D or None
        The oracle's frontier, None when it is not drawn.
    ax_ : matplotlib Axes
        Axes of the plot.
    figure_ : matplotlib Figure
        Figure of the axes.

    See Also
    --------
    skrouter.metrics.cost_quality_curve : Operating points of a router.
    skrouter.metrics.pareto_frontier : Points that the line joins.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.plotting import CostQualityDisplay
    >>> from skrouter.routers import KMeansRouter, KNNRouter
    >>> X, y = make_routing_problem(n_queries=400, random_state=0)
    >>> X_train, X_test, y_train, y_test = X[:200], X[200:], y[:200], y[200:]
    >>> knn = KNNRouter(n_neighbors=20).fit(X_train, y_train)
    >>> display = CostQualityDisplay.from_estimator(knn, X_test, y_test, name="KNN")
    >>> display.ax_.get_xlabel()
    'Mean cost per query (USD)'
    >>> kmeans = KMeansRouter(8, random_state=0).fit(X_train, y_train)
    >>> _ = CostQualityDisplay.from_estimator(
    ...     kmeans, X_test, y_test, ax=display.ax_, plot_models=False,
    ...     plot_oracle=False,
    ... )
    >>> len(display.ax_.get_legend().get_texts())
    4
    """

    def __init__(
        self,
        *,
        costs,
        qualities,
        thresholds=None,
        nauc=None,
        name=None,
        sweep="cost_weight",
        model_points=None,
        oracle_costs=None,
        oracle_qualities=None,
    ):
        self.costs = costs
        self.qualities = qualities
        self.thresholds = thresholds
        self.nauc = nauc
        self.name = name
        self.sweep = sweep
        self.model_points = model_points
        self.oracle_costs = oracle_costs
        self.oracle_qualities = oracle_qualities

    def plot(
        self,
        ax=None,
        *,
        name=None,
        plot_models=True,
        plot_oracle=True,
        xscale="auto",
        curve_kwargs=None,
    ):
        """Draw the router's frontier and, optionally, the baselines.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on. By default a new figure and axes.
        name : str, default=None
            Name of the router in the legend; by default ``self.name``.
        plot_models : bool, default=True
            Whether to draw and label the single models' points. Ignored
            when ``model_points`` is None.
        plot_oracle : bool, default=True
            Whether to draw the oracle's frontier. Ignored when the oracle's
            points are None.
        xscale : {"auto", "linear", "log"}, default="auto"
            Scale of the cost axis. ``"auto"`` makes it logarithmic when the
            drawn costs span more than about two orders of magnitude and
            leaves it as it is otherwise. ``"log"`` becomes symmetric-
            logarithmic when a drawn cost is 0.
        curve_kwargs : dict, default=None
            Keyword arguments for ``ax.plot`` of the router's frontier, such
            as ``color`` or ``linestyle``.

        Returns
        -------
        display : CostQualityDisplay
            The display, with the artists stored as attributes.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if xscale not in _XSCALES:
            raise ValueError(f"xscale must be one of {_XSCALES}; got {xscale!r}.")

        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 5.0))
        name = self.name if name is None else name

        self.frontier_costs_, self.frontier_qualities_ = pareto_frontier(
            self.costs, self.qualities
        )
        label = "Router" if name is None else str(name)
        if self.nauc is not None:
            label = f"{label} (nAUC = {self.nauc:.3f})"
        line_kwargs = {"marker": "o", "markersize": 3, "linewidth": 1.5, "zorder": 3}
        line_kwargs.update(curve_kwargs or {})
        line_kwargs.setdefault("label", label)
        (self.line_,) = ax.plot(
            self.frontier_costs_, self.frontier_qualities_, **line_kwargs
        )

        drawn_costs = [self.frontier_costs_]
        self.oracle_line_ = None
        if plot_oracle and self.oracle_costs is not None:
            oracle_costs, oracle_qualities = pareto_frontier(
                self.oracle_costs, self.oracle_qualities
            )
            (self.oracle_line_,) = ax.plot(
                oracle_costs,
                oracle_qualities,
                linestyle="--",
                color="0.45",
                linewidth=1.0,
                label="Oracle",
                zorder=2,
            )
            drawn_costs.append(oracle_costs)

        self.model_points_ = None
        self.model_labels_ = []
        if plot_models and self.model_points is not None:
            points = self.model_points
            self.model_points_ = ax.scatter(
                points["cost"],
                points["quality"],
                marker="s",
                s=16,
                color="black",
                label="Single models",
                zorder=4,
            )
            drawn_costs.append(points["cost"].to_numpy(dtype=float))

        _set_cost_scale(ax, np.concatenate(drawn_costs), xscale)
        if self.model_points_ is not None:
            self.model_labels_ = _label_points(ax, self.model_points)

        ax.set_xlabel("Mean cost per query (USD)")
        ax.set_ylabel("Mean quality")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize="small")

        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        router,
        X,
        y,
        *,
        sweep="cost_weight",
        name=None,
        ax=None,
        plot_models=True,
        plot_oracle=True,
        xscale="auto",
        curve_kwargs=None,
    ):
        """Plot the cost-quality curve of a fitted router on queries ``X``.

        Parameters
        ----------
        router : estimator
            A fitted skrouter router, or a fitted ``Pipeline`` whose last
            step is one.
        X : array-like or DataFrame
            Queries, in the form the first step of ``router`` accepts.
        y : DataFrame of shape (n_queries, 2 * n_models)
            True outcomes of the models the router was fitted on, in any
            column order. Queries with a missing outcome are left out with a
            warning.
        sweep : {"cost_weight", "cap"}, default="cost_weight"
            Family of operating points, see
            :func:`skrouter.metrics.cost_quality_curve`.
        name : str, default=None
            Name of the router in the legend; by default the class name of
            the router (the last step of a pipeline).
        ax : matplotlib Axes, default=None
            Axes to draw on. By default a new figure and axes.
        plot_models : bool, default=True
            Whether to draw and label the single models' points.
        plot_oracle : bool, default=True
            Whether to draw the oracle's frontier.
        xscale : {"auto", "linear", "log"}, default="auto"
            Scale of the cost axis, see :meth:`plot`.
        curve_kwargs : dict, default=None
            Keyword arguments for ``ax.plot`` of the router's frontier.

        Returns
        -------
        display : CostQualityDisplay

        Raises
        ------
        TypeError
            If ``router`` does not end with a skrouter router.
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")

        final, X_final = _final_router(router, X)
        if not hasattr(final, "predict_quality") or not hasattr(
            final, "_align_outcomes"
        ):
            raise TypeError(
                "router must be a fitted skrouter router or a Pipeline that ends "
                f"with one; got a last step of type {type(final).__name__}."
            )
        y = final._align_outcomes(y)
        quality_pred, cost_pred = final._predict(X_final)
        name = type(final).__name__ if name is None else name
        return cls.from_predictions(
            y,
            quality_pred,
            cost_pred,
            sweep=sweep,
            name=name,
            ax=ax,
            plot_models=plot_models,
            plot_oracle=plot_oracle,
            xscale=xscale,
            curve_kwargs=curve_kwargs,
        )

    @classmethod
    def from_predictions(
        cls,
        y_true,
        quality_pred,
        cost_pred,
        *,
        sweep="cost_weight",
        name=None,
        ax=None,
        plot_models=True,
        plot_oracle=True,
        xscale="auto",
        curve_kwargs=None,
    ):
        """Plot the cost-quality curve of predicted qualities and costs.

        Parameters
        ----------
        y_true : DataFrame of shape (n_queries, 2 * n_models)
            True outcomes. Queries with a missing outcome are left out with
            one warning.
        quality_pred : array-like of shape (n_queries, n_models)
            Predicted quality of each model, in the model order of
            ``y_true``.
        cost_pred : array-like of shape (n_queries, n_models)
            Predicted cost of each model, finite and >= 0.
        sweep : {"cost_weight", "cap"}, default="cost_weight"
            Family of operating points, see
            :func:`skrouter.metrics.cost_quality_curve`.
        name : str, default=None
            Name of the router in the legend; by default ``"Router"``.
        ax : matplotlib Axes, default=None
            Axes to draw on. By default a new figure and axes.
        plot_models : bool, default=True
            Whether to draw and label the single models' points.
        plot_oracle : bool, default=True
            Whether to draw the oracle's frontier.
        xscale : {"auto", "linear", "log"}, default="auto"
            Scale of the cost axis, see :meth:`plot`.
        curve_kwargs : dict, default=None
            Keyword arguments for ``ax.plot`` of the router's frontier.

        Returns
        -------
        display : CostQualityDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from skrouter import make_outcomes
        >>> from skrouter.plotting import CostQualityDisplay
        >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]],
        ...                   models=["large", "small"])
        >>> quality_pred = np.array([[0.9, 0.2], [0.6, 0.5]])
        >>> display = CostQualityDisplay.from_predictions(
        ...     y, quality_pred, y["cost"], name="toy"
        ... )
        >>> display.frontier_costs_, display.frontier_qualities_
        (array([1. , 2.5]), array([0.5, 1. ]))
        >>> float(display.nauc)
        0.875
        """
        _check_matplotlib(f"{cls.__name__}.from_predictions")
        _check_sweep(sweep)

        # Validate once, so that incomplete rows are reported by one warning,
        # then compute everything on the complete rows.
        quality, cost, quality_pred, cost_pred = _check_predictions(
            y_true, quality_pred, cost_pred
        )
        models = list(check_outcomes(y_true, input_name="y_true")["quality"].columns)

        costs, qualities, thresholds = _sweep(
            quality, cost, quality_pred, cost_pred, sweep
        )
        frontier_costs, frontier_qualities = pareto_frontier(costs, qualities)
        model_costs, model_qualities = cost.mean(axis=0), quality.mean(axis=0)
        nauc = _mean_over_range(
            frontier_costs, frontier_qualities, model_costs.min(), model_costs.max()
        )
        model_points = pd.DataFrame(
            {"cost": model_costs, "quality": model_qualities}, index=models
        )
        oracle_costs, oracle_qualities, _ = _sweep(quality, cost, quality, cost, sweep)

        display = cls(
            costs=costs,
            qualities=qualities,
            thresholds=thresholds,
            nauc=nauc,
            name="Router" if name is None else name,
            sweep=sweep,
            model_points=model_points,
            oracle_costs=oracle_costs,
            oracle_qualities=oracle_qualities,
        )
        return display.plot(
            ax=ax,
            plot_models=plot_models,
            plot_oracle=plot_oracle,
            xscale=xscale,
            curve_kwargs=curve_kwargs,
        )


def _set_cost_scale(ax, costs, xscale):
    """Set the cost axis scale; ``"auto"`` makes it logarithmic over 50x.

    Under ``"auto"``, an axes that is already logarithmic stays so, so that
    a router drawn on top of others does not undo their scale.
    """
    if xscale == "linear":
        ax.set_xscale("linear")
        return
    costs = np.asarray(costs, dtype=float)
    positive = costs[costs > 0]
    if positive.size == 0:
        return
    if xscale == "auto" and positive.max() <= LOG_SCALE_RATIO * positive.min():
        return
    if (costs == 0).any():
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    elif ax.get_xscale() != "symlog":
        ax.set_xscale("log")


def _label_points(ax, points):
    """Write each model's name beside its point, stacking labels that collide.

    Labels are placed from the lowest point up. A label whose box would
    overlap one already placed moves up by one line until it is clear, so
    models with close costs and qualities stay readable. The boxes are
    estimated from the font size with some room to spare, because the axes
    can still change size (a title, a tight layout) after this placement.
    """
    ax.autoscale_view()
    figure = ax.figure
    pixels_per_point = figure.dpi / 72.0
    line_height = 1.4 * _MODEL_LABEL_FONTSIZE * pixels_per_point
    char_width = 0.65 * _MODEL_LABEL_FONTSIZE * pixels_per_point
    offset = 4.0 * pixels_per_point

    anchors = ax.transData.transform(
        np.column_stack(
            [points["cost"].to_numpy(float), points["quality"].to_numpy(float)]
        )
    )
    axes_right = ax.get_window_extent().x1
    order = np.lexsort((anchors[:, 0], anchors[:, 1]))
    placed = []
    labels = [None] * len(points)
    for index in order:
        name = str(points.index[index])
        width = char_width * len(name)

        # A label that would cross the right edge of the axes goes on the
        # left of its point.
        side = 1.0
        left = anchors[index, 0] + offset
        if left + width > axes_right:
            side = -1.0
            left = anchors[index, 0] - offset - width
        right = left + width

        bottom = anchors[index, 1] - 0.5 * line_height
        for _ in range(len(points)):
            clash = any(
                left < other_right
                and other_left < right
                and bottom < other_bottom + line_height
                and other_bottom < bottom + line_height
                for other_left, other_right, other_bottom in placed
            )
            if not clash:
                break
            bottom += line_height
        placed.append((left, right, bottom))

        shift = (bottom - (anchors[index, 1] - 0.5 * line_height)) / pixels_per_point
        labels[index] = ax.annotate(
            name,
            (points["cost"].iloc[index], points["quality"].iloc[index]),
            xytext=(side * offset / pixels_per_point, shift),
            textcoords="offset points",
            fontsize=_MODEL_LABEL_FONTSIZE,
            va="center",
            ha="left" if side > 0 else "right",
            color="0.15",
            bbox={
                "boxstyle": "square,pad=0.05",
                "fc": "white",
                "ec": "none",
                "alpha": 0.6,
            },
            zorder=5,
            arrowprops=(
                {"arrowstyle": "-", "color": "0.6", "linewidth": 0.5}
                if shift > 0
                else None
            ),
        )
    return labels
