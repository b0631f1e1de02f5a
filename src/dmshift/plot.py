"""Figures of clusterings: 2-D scatter, image montage, confusion matrix, training curve.

matplotlib is optional (``pip install "dmshift[plot]"``) and imported inside each function.
Figures are :class:`matplotlib.figure.Figure` objects on the Agg canvas, never ``pyplot``: no
window, no global backend switched. Each function draws on ``ax`` when given, else on a new
figure of a fixed size (a saved PNG is ``figsize * dpi`` pixels). Noise (``NOISE``) is grey.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .constants import NOISE

__all__ = ["scatter_2d", "montage", "confusion", "training_curve", "save_figure", "new_figure", "cluster_colors",
           "match_clusters", "model_projection", "matched_colors"]

_INSTALL_HINT = 'plotting needs matplotlib: pip install "dmshift[plot]"'
NOISE_COLOR = (0.62, 0.62, 0.62, 1.0)


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return matplotlib, Figure, FigureCanvasAgg


def new_figure(figsize=(5.0, 5.0), *, ncols: int = 1, nrows: int = 1, **subplot_kw):
    """A figure on the Agg canvas and its axes (one ``Axes``, or an array for a grid).

    Parameters
    ----------
    figsize : (float, float)
        Inches; a saved PNG is ``figsize * dpi`` pixels.
    ncols, nrows : int

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : Axes or ndarray of Axes
    """
    _, Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, ax


def _fig_ax(ax, figsize):
    if ax is None:
        return new_figure(figsize)
    return ax.figure, ax


def cluster_colors(n: int) -> np.ndarray:
    """``n`` distinct RGBA colours: tab10 up to 10, tab20 up to 20, then evenly spaced hues."""
    matplotlib, _, _ = _matplotlib()
    if n <= 10:
        return np.asarray(matplotlib.colormaps["tab10"].colors[:max(n, 0)]).reshape(-1, 3)
    if n <= 20:
        return np.asarray(matplotlib.colormaps["tab20"].colors[:n])
    hsv = matplotlib.colormaps["hsv"]
    # interleave hues so that neighbouring cluster ids get different colours
    order = np.argsort(np.arange(n) * 7 % n, kind="stable")
    return np.asarray([hsv(i / n)[:3] for i in order])


def _numpy(a) -> np.ndarray | None:
    """A fitted attribute as a float64 array, whether it is held as NumPy or as a torch tensor."""
    if a is None:
        return None
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def model_projection(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The fixed 2-D projection of a fitted model: ``(origin (d,), axes (d, 2))``, or None for 2-D inputs.

    A point ``x`` is drawn at ``(x - origin) @ axes``. The projection depends on the model
    only, so figures of different files drawn with it share their axes. It is the model's
    own projection (``components_``, after its standardisation ``mean_`` / ``scale_``)
    when it has one of at least two components; otherwise the first two principal axes
    of its ``cluster_centers_`` (after the same standardisation).

    Raises
    ------
    ValueError
        When the model has neither a projection nor at least three cluster centres.
    """
    d = int(getattr(model, "n_features_in_", 0) or 0)
    mean = _numpy(getattr(model, "mean_", None))
    scale = _numpy(getattr(model, "scale_", None))
    origin = np.zeros(d) if mean is None else mean.reshape(-1)
    scale = np.ones(d if d else origin.size) if scale is None else np.broadcast_to(scale, origin.shape or (d,))
    components = _numpy(getattr(model, "components_", None))
    if components is not None and components.ndim == 2 and components.shape[1] >= 2:
        return origin, components[:, :2] / scale[:, None]  # ((x - mean) / scale) @ C == (x - mean) @ (C / scale)
    if d and d <= 2:
        return None
    centers = _numpy(getattr(model, "cluster_centers_", None))
    if centers is None or centers.ndim != 2 or centers.shape[0] < 3:
        raise ValueError(f"The 'model' parameter ({type(model).__name__}) has no projection (components_) and "
                         "fewer than three cluster centres (cluster_centers_) to draw its clusters with.")
    Cs = (centers - origin) / scale  # (k, d) in the model's standardised space
    _, _, Vt = np.linalg.svd(Cs - Cs.mean(0), full_matrices=False)
    axes = Vt[:2].T  # (d, 2)
    axes = axes * np.where(axes[np.abs(axes).argmax(0), [0, 1]] < 0, -1.0, 1.0)  # fixed signs
    return Cs.mean(0) * scale + origin, axes / scale[:, None]


def matched_colors(y_true, y_pred, true_colors: dict) -> dict:
    """Colours for the clusters of ``y_pred``: each matched cluster takes the colour of its class.

    Clusters are matched one-to-one to classes as in :func:`match_clusters`; unmatched
    clusters get colours that no class uses. ``true_colors`` maps each class to its colour.
    """
    _, classes, columns = match_clusters(y_true, y_pred)
    out = {}
    for cls, c in zip(classes, columns):
        if c != NOISE and cls in true_colors:
            out[c] = true_colors[cls]
    rest = [c for c in columns if c != NOISE and c not in out]
    used = np.asarray([np.asarray(v, dtype=float)[:3] for v in true_colors.values()]).reshape(-1, 3)
    pool = np.vstack([cluster_colors(20), cluster_colors(max(len(rest), 1) + 21)])  # tab20, then spread hues
    spare = [col for col in pool if not np.any(np.all(np.abs(used - col) < 1e-3, axis=1))]
    out.update({c: tuple(spare[k % len(spare)]) for k, c in enumerate(rest)})
    return out


def _project_2d(X: np.ndarray, random_state, projection=None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"The 'X' parameter must be a 2-D array (n_samples, n_features). Got shape {X.shape} instead.")
    if projection is not None:
        origin, axes = projection
        if axes.shape[0] != X.shape[1]:
            raise ValueError(f"The 'projection' parameter must map {X.shape[1]} features. Got axes of shape "
                             f"{axes.shape} instead.")
        return (X - origin) @ axes  # (n, 2)
    if X.shape[1] == 2:
        return X
    if X.shape[1] == 1:
        return np.column_stack([X[:, 0], np.zeros(len(X))])
    from sklearn.decomposition import PCA
    n_comp = min(2, X.shape[0], X.shape[1])
    Z = PCA(n_components=n_comp, random_state=random_state).fit_transform(X)
    if Z.shape[1] < 2:
        Z = np.column_stack([Z, np.zeros((len(Z), 2 - Z.shape[1]))])
    return Z


def _check_labels(labels, n: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels).ravel()
    if labels.shape != (n,):
        raise ValueError(f"The '{name}' parameter must have shape ({n},). Got {labels.shape} instead.")
    return labels


def scatter_2d(X, labels, ax=None, *, title: str | None = None, point_size: float | None = None,
               legend: bool | None = None, figsize=(5.0, 5.0), random_state=0, projection=None, colors=None):
    """Points in 2-D coloured by cluster, noise in grey.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Projected to its first two principal components when ``n_features > 2``.
    labels : array-like of shape (n_samples,)
        Cluster ids; ``NOISE`` (-1) is drawn grey, under the clusters.
    ax : matplotlib Axes, optional
        Draw here; otherwise on a new ``figsize`` figure.
    title : str, optional
    point_size : float, optional
        Marker area; by default it shrinks as the number of points grows.
    legend : bool, optional
        Default: a legend when there are at most 12 clusters.
    figsize : (float, float), default=(5, 5)
    random_state : int, default=0
        Seed of the PCA solver.
    projection : (ndarray of shape (n_features,), ndarray of shape (n_features, 2)), optional
        ``(origin, axes)``: draw ``(X - origin) @ axes`` instead of fitting a PCA to ``X``,
        e.g. :func:`model_projection` of a fitted model, so figures of different data
        share their axes.
    colors : dict, optional
        Colour of each cluster id (e.g. from :func:`matched_colors`); by default the ids
        in increasing order take :func:`cluster_colors`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax, figsize)
    X = np.asarray(X)
    labels = _check_labels(labels, len(X))
    Z = _project_2d(X, random_state, projection)  # (n, 2)
    ids = [c for c in np.unique(labels) if c != NOISE]
    if colors is None:
        colors = cluster_colors(len(ids))
    else:
        missing = [c for c in ids if c not in colors]
        if missing:
            raise ValueError(f"The 'colors' parameter must give a colour to every cluster. Got none for {missing[:5]}.")
        colors = [colors[c] for c in ids]
    s = point_size if point_size is not None else float(np.clip(8000.0 / max(len(X), 1), 3.0, 30.0))
    noise = labels == NOISE
    if noise.any():
        ax.scatter(Z[noise, 0], Z[noise, 1], s=s * 0.6, color=NOISE_COLOR, alpha=0.6, linewidths=0,
                   label=f"noise ({noise.sum()})")
    for c, col in zip(ids, colors):
        m = labels == c
        ax.scatter(Z[m, 0], Z[m, 1], s=s, color=col, alpha=0.85, linewidths=0, label=str(c))
    if legend is None:
        legend = 0 < len(ids) <= 12
    if legend:
        ax.legend(loc="best", fontsize="small", markerscale=2.5, frameon=False, ncols=2 if len(ids) > 6 else 1)
    if projection is not None:
        ax.set_xlabel("model axis 1")
        ax.set_ylabel("model axis 2")
    elif X.ndim == 2 and X.shape[1] > 2:
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else f"{len(ids)} clusters, {noise.mean():.0%} noise")
    return fig


def montage(X, labels, image_shape, per_cluster: int = 8, *, max_clusters: int = 20, ax=None,
            figsize=None, random_state=0):
    """A grid of images: one row per cluster (largest first), ``per_cluster`` random members each.

    Parameters
    ----------
    X : array-like of shape (n_samples, prod(image_shape))
        Flattened upright images, row-major, values in [0, 1] (or any range: each
        image is drawn with the range of the whole montage).
    labels : array-like of shape (n_samples,)
        A last row shows NOISE points when there are any.
    image_shape : (H, W) or (H, W, C)
    per_cluster : int, default=8
    max_clusters : int, default=20
        Rows beyond this many clusters are left out (the largest are kept).
    ax : matplotlib Axes, optional
    figsize : (float, float), optional
        Default: about 0.8 inch per image.
    random_state : int, default=0
        Which members are shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=np.float64)
    labels = _check_labels(labels, len(X))
    shape = tuple(int(v) for v in image_shape)
    if len(shape) not in (2, 3) or int(np.prod(shape)) != X.shape[1]:
        raise ValueError(f"The 'image_shape' parameter must be (H, W) or (H, W, C) with H*W*C = {X.shape[1]}. "
                         f"Got {image_shape!r} instead.")
    if int(per_cluster) < 1:
        raise ValueError(f"The 'per_cluster' parameter must be an int in the range [1, inf). "
                         f"Got {per_cluster!r} instead.")
    per_cluster = int(per_cluster)
    rng = np.random.default_rng(random_state)
    ids, counts = np.unique(labels[labels != NOISE], return_counts=True)
    rows = list(ids[np.argsort(-counts, kind="stable")][:max_clusters])
    if np.any(labels == NOISE):
        rows.append(NOISE)
    if not rows:
        raise ValueError("The 'labels' parameter holds no points to show.")
    H, W = shape[:2]
    C = shape[2] if len(shape) == 3 else 1
    pad = 1
    lo, hi = float(X.min()), float(X.max())
    canvas = np.ones(((H + pad) * len(rows) - pad, (W + pad) * per_cluster - pad, 3))
    for r, c in enumerate(rows):
        members = np.flatnonzero(labels == c)
        pick = rng.choice(members, size=min(per_cluster, members.size), replace=False)
        for k, i in enumerate(pick):
            img = (X[i].reshape(shape) - lo) / max(hi - lo, 1e-12)
            img = np.repeat(img[..., None], 3, axis=2) if C == 1 else img[..., :3]
            canvas[r * (H + pad):r * (H + pad) + H, k * (W + pad):k * (W + pad) + W] = img
    if figsize is None:
        figsize = (max(2.0, 0.8 * per_cluster + 0.8), max(1.5, 0.8 * len(rows)))
    fig, ax = _fig_ax(ax, figsize)
    ax.imshow(np.clip(canvas, 0, 1), interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([(H + pad) * r + H / 2 for r in range(len(rows))])
    ax.set_yticklabels(["noise" if c == NOISE else str(c) for c in rows], fontsize="small")
    ax.set_ylabel("cluster")
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    return fig


def match_clusters(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts with classes as rows and clusters as columns in Hungarian order, noise last.

    Returns
    -------
    counts : ndarray of shape (n_classes, n_columns), int64
    classes : ndarray of shape (n_classes,)
    columns : ndarray of shape (n_columns,)
        Cluster ids: first the clusters matched one-to-one to classes (in class order),
        then unmatched clusters by decreasing size, then ``NOISE`` if any point is noise.
    """
    from scipy.optimize import linear_sum_assignment

    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"The 'y_pred' parameter must have the shape of y_true {y_true.shape}. "
                         f"Got {y_pred.shape} instead.")
    classes, t = np.unique(y_true, return_inverse=True)
    clusters = np.unique(y_pred[y_pred != NOISE])
    C = np.zeros((classes.size, clusters.size), dtype=np.int64)  # (classes, clusters)
    keep = y_pred != NOISE
    np.add.at(C, (t[keep], np.searchsorted(clusters, y_pred[keep])), 1)
    order = []
    if C.size:
        r, c = linear_sum_assignment(-C)
        order = list(c[np.argsort(r)])
    rest = [j for j in np.argsort(-C.sum(0), kind="stable") if j not in set(order)]
    cols = np.asarray(order + rest, dtype=np.int64)
    counts = C[:, cols]
    columns = clusters[cols]
    if (~keep).any():
        noise_col = np.bincount(t[~keep], minlength=classes.size)[:, None]
        counts = np.hstack([counts, noise_col])
        columns = np.append(columns, NOISE)
    return counts, classes, columns


def confusion(y_true, y_pred, ax=None, *, normalize: bool = False, annotate: bool | None = None,
              title: str | None = None, figsize=(6.0, 5.0)):
    """Confusion matrix of clusters against classes: rows true classes, columns clusters.

    Columns are ordered by the Hungarian match (each class's cluster on the diagonal),
    then unmatched clusters, then a "noise" column when there is noise.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    ax : matplotlib Axes, optional
    normalize : bool, default=False
        Show each row as shares of its class instead of counts.
    annotate : bool, optional
        Write the counts in the cells; default when the matrix is at most 15 x 16.
    title : str, optional
    figsize : (float, float), default=(6, 5)

    Returns
    -------
    matplotlib.figure.Figure
    """
    counts, classes, columns = match_clusters(y_true, y_pred)
    fig, ax = _fig_ax(ax, figsize)
    M = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalize else counts
    ax.imshow(M, cmap="Blues", aspect="auto", interpolation="nearest", vmin=0)
    if annotate is None:
        annotate = counts.shape[0] <= 15 and counts.shape[1] <= 16
    if annotate and M.size:
        vmax = M.max() if M.max() > 0 else 1
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if counts[i, j]:
                    txt = f"{M[i, j]:.2f}" if normalize else str(counts[i, j])
                    ax.text(j, i, txt, ha="center", va="center", fontsize="x-small",
                            color="white" if M[i, j] > 0.6 * vmax else "black")
    step_c = max(1, len(columns) // 25)
    step_r = max(1, len(classes) // 25)
    ax.set_xticks(np.arange(len(columns))[::step_c])
    ax.set_xticklabels(["noise" if c == NOISE else str(c) for c in columns][::step_c], fontsize="small")
    ax.set_yticks(np.arange(len(classes))[::step_r])
    ax.set_yticklabels([str(c) for c in classes][::step_r], fontsize="small")
    ax.set_xlabel("cluster (Hungarian order)")
    ax.set_ylabel("true class")
    ax.set_title(title if title is not None else "confusion matrix")
    return fig


def training_curve(history, ax=None, *, title: str | None = None, smooth: float = 0.9, figsize=(6.0, 4.0)):
    """Training loss per step (raw and smoothed), and the evaluation score when there is one.

    Parameters
    ----------
    history : sequence of (step, train_loss, eval_score or None)
        As in ``DMSClustering().fit(...).training_["history"]``.
    ax : matplotlib Axes, optional
    title : str, optional
    smooth : float, default=0.9
        Exponential smoothing of the loss curve (0: none).
    figsize : (float, float), default=(6, 4)

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = list(history)
    if not rows:
        raise ValueError("The 'history' parameter must hold at least one (step, loss, score) row. Got none.")
    try:
        steps = np.asarray([float(r[0]) for r in rows])
        loss = np.asarray([float(r[1]) for r in rows])
        score = [None if len(r) < 3 or r[2] is None else float(r[2]) for r in rows]
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"The 'history' parameter must hold (step, loss, score) rows: {exc}") from None
    if not 0 <= smooth < 1:
        raise ValueError(f"The 'smooth' parameter must be a float in the range [0, 1). Got {smooth!r} instead.")
    fig, ax = _fig_ax(ax, figsize)
    ema = np.empty_like(loss)
    acc = loss[0]
    for i, v in enumerate(loss):
        acc = smooth * acc + (1 - smooth) * v
        ema[i] = acc
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, linewidth=0.8, label="training loss")
    ax.plot(steps, ema, color="tab:blue", linewidth=1.5, label="smoothed")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    handles, names = ax.get_legend_handles_labels()
    es = [(s, v) for s, v in zip(steps, score) if v is not None]
    if es:
        ax2 = ax.twinx()
        h = ax2.plot([s for s, _ in es], [v for _, v in es], "o-", color="tab:orange", markersize=3,
                     label="validation score")
        ax2.set_ylabel("validation score")
        handles += h
        names += ["validation score"]
    ax.legend(handles, names, loc="upper right", fontsize="small", frameon=False)
    ax.set_title(title if title is not None else "training")
    return fig


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (format from the extension, e.g. ``.png``, ``.pdf``, ``.svg``).

    The image is ``figsize * dpi`` pixels (no tight cropping), so sizes are predictable.
    Missing parent folders are created. Returns the path written.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
