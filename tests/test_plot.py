"""dmshift.plot: figures render to PNGs of the expected size; the confusion order is Hungarian."""

import sys
import types

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from dmshift import plot  # noqa: E402
from dmshift.constants import NOISE  # noqa: E402


def _png_shape(path):
    img = imread(str(path))
    assert img.size and img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.std() > 0  # something was drawn
    return img.shape[:2]


def test_scatter_projects_and_saves_png_of_figsize_times_dpi(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    labels = np.repeat([0, 1, 2], 40)
    labels[:7] = NOISE
    fig = plot.scatter_2d(X, labels, figsize=(4, 3))
    path = plot.save_figure(fig, tmp_path / "sub" / "s.png", dpi=50)
    assert _png_shape(path) == (150, 200)


def test_scatter_draws_on_given_axes_and_accepts_1d_and_2d_inputs(tmp_path):
    fig, axes = plot.new_figure((6, 3), ncols=2)
    assert plot.scatter_2d(np.arange(10.0)[:, None], np.zeros(10, int), ax=axes[0]) is fig
    plot.scatter_2d(np.random.default_rng(0).normal(size=(10, 2)), np.full(10, NOISE), ax=axes[1])
    assert _png_shape(plot.save_figure(fig, tmp_path / "a.png")) == (300, 600)


def test_scatter_rejects_labels_of_wrong_length():
    with pytest.raises(ValueError, match="labels"):
        plot.scatter_2d(np.zeros((5, 3)), np.zeros(4))


def test_montage_rows_are_clusters(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((60, 8 * 8 * 3))
    labels = rng.integers(-1, 4, size=60)
    fig = plot.montage(X, labels, (8, 8, 3), per_cluster=5, figsize=(5, 4))
    assert _png_shape(plot.save_figure(fig, tmp_path / "m.png", dpi=40)) == (160, 200)
    with pytest.raises(ValueError, match="image_shape"):
        plot.montage(X, labels, (8, 8))


def test_match_clusters_orders_columns_by_hungarian_match_and_puts_noise_last():
    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([5, 5, NOISE, 3, 3, 3, 7, 7, 9, NOISE])
    counts, classes, columns = plot.match_clusters(y_true, y_pred)
    assert list(classes) == [0, 1, 2]
    assert list(columns) == [5, 3, 7, 9, NOISE]
    np.testing.assert_array_equal(counts, [[2, 0, 0, 0, 1], [0, 3, 0, 0, 0], [0, 0, 2, 1, 1]])


def test_confusion_and_training_curve_render(tmp_path):
    y = np.repeat(np.arange(4), 10)
    pred = np.roll(y, 3)
    pred[::7] = NOISE
    fig = plot.confusion(y, pred, normalize=True)
    assert _png_shape(plot.save_figure(fig, tmp_path / "c.png")) == (500, 600)
    history = [(s, 1.0 / s, (0.5 / s if s % 5 == 0 else None)) for s in range(1, 31)]
    fig = plot.training_curve(history)
    assert _png_shape(plot.save_figure(fig, tmp_path / "t.png")) == (400, 600)
    with pytest.raises(ValueError, match="history"):
        plot.training_curve([])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"dmshift\[plot\]"):
        plot.scatter_2d(np.zeros((3, 2)), np.zeros(3))


# ---------------------------------------------------------------------------- the model's projection, matched colours
def test_model_projection_is_the_models_own_and_scatter_uses_it():
    from dmshift.estimators.dms import DMSClustering

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = (rng.normal(size=(60, 5)) + 4 * np.eye(5)[y]).astype(np.float32)
    dms = DMSClustering(n_components=3, max_steps=2, batch_size=4, instance_size=(8, 12), n_seeds=8, max_iter=5,
                        device="cpu", random_state=0).fit(X, np.where(np.arange(60) % 3 == 0, y, -1))
    C = np.asarray(dms.components_, dtype=np.float64)
    mean, scale = np.asarray(dms.mean_, dtype=np.float64), np.asarray(dms.scale_, dtype=np.float64)
    origin, axes = plot.model_projection(dms)
    np.testing.assert_allclose(axes, C[:, :2] / scale.reshape(-1, 1), rtol=1e-6)
    fig, ax = plot.new_figure()
    plot.scatter_2d(X, np.zeros(60, int), ax=ax, projection=(origin, axes))
    drawn = ax.collections[0].get_offsets()
    np.testing.assert_allclose(drawn, ((X - mean) / scale) @ C[:, :2], rtol=1e-5, atol=1e-5)
    # the same point lands at the same place whatever else is in the file
    fig2, ax2 = plot.new_figure()
    plot.scatter_2d(X[:10], np.zeros(10, int), ax=ax2, projection=(origin, axes))
    np.testing.assert_allclose(ax2.collections[0].get_offsets(), drawn[:10], rtol=1e-6)


def test_model_projection_without_components_uses_the_cluster_centres():
    model = types.SimpleNamespace(n_features_in_=3, mean_=np.ones(3), scale_=2.0, components_=None,
                                  cluster_centers_=np.array([[1.0, 1, 1], [5, 1, 1], [1, 9, 1], [5, 9, 1]]))
    origin, axes = plot.model_projection(model)
    assert axes.shape == (3, 2)
    Z = (model.cluster_centers_ - origin) @ axes
    assert np.allclose(Z.mean(0), 0) and np.linalg.matrix_rank(Z) == 2
    assert plot.model_projection(types.SimpleNamespace(n_features_in_=2, cluster_centers_=None)) is None
    with pytest.raises(ValueError, match="no projection"):
        plot.model_projection(types.SimpleNamespace(n_features_in_=4, cluster_centers_=np.zeros((2, 4))))


def test_matched_colors_give_a_cluster_the_colour_of_its_class():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([7, 7, 3, 3, 5, 5, 9])  # 7 ~ class 0, 3 ~ class 1, 5 ~ class 2, 9 unmatched
    palette = {0: (1.0, 0.0, 0.0), 1: (0.0, 1.0, 0.0), 2: (0.0, 0.0, 1.0)}
    colors = plot.matched_colors(true, pred, palette)
    assert colors[7] == palette[0] and colors[3] == palette[1] and colors[5] == palette[2]
    assert tuple(colors[9]) not in palette.values()
