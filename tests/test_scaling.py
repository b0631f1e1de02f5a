"""The float64 standardisation every estimator applies (issue 22 items 2, 5 and 10).

Offsets, scales and outliers that float32 cannot hold next to the data must not decide the
clustering: the labels of ``X + 1.7e9`` and ``X * 1e20`` are those of ``X``; what cannot be
represented is refused by name.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from _tiny import make
from dmshift.scaling import (MAX_STANDARDIZED, check_standardization, check_standardize, fit_standardization,
                             standardize)

ESTIMATORS = ("dms", "kcl", "mcl", "ddc", "mmdc", "l2c")
STEPS = {"dms": dict(max_steps=30, n_seeds=30),"kcl": dict(max_steps=30), "mcl": dict(max_steps=30), "ddc": dict(max_steps=30),
         "mmdc": dict(n_epochs=3), "l2c": dict(max_steps=30)}


def blobs3(n: int = 64, seed: int = 0):
    """Three 3-D blobs (any two features tell them apart) on a 2**-10 grid, so that ``X + 1.7e9`` is exact
    in float64; n = 64 keeps the mean exact too. float64 X, labels, partial labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 3)) * 0.3 + np.array([[0, 0, 0], [4, 4, 0], [0, 4, 4]])[y]
    return np.round(X * 1024) / 1024, y, np.where(np.arange(n) % 2 == 0, y, -1)


def _fit(name, X, yp, **kw):
    est = make(name, **{**STEPS.get(name, {}), **kw})
    return est.fit(X, yp) if name in ("dms", "kcl", "mcl", "l2c") else est.fit(X)


# ---------------------------------------------------------------------- the module
def test_modes_are_checked_by_name():
    assert check_standardize(True) == "feature"
    assert check_standardize(True, image=True) == "image"
    assert check_standardize(False) == check_standardize("none") == "none"
    assert check_standardize("global") == "global"
    for bad in ("yes", 1, None, "Feature"):
        with pytest.raises(ValueError, match=r"'standardize' parameter must be a bool or one of .*Got"):
            check_standardize(bad)


def test_feature_mode_is_standard_scaler_and_global_one_rms_scale():
    X = np.random.default_rng(0).normal(size=(50, 3)) * [1.0, 10.0, 1000.0] + [5, -3, 1e4]
    mean, scale = fit_standardization(X, True)
    ref = StandardScaler().fit(X)
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(scale, ref.scale_, rtol=1e-12)
    mean_g, scale_g = fit_standardization(X, "global")
    np.testing.assert_allclose(scale_g, np.sqrt(np.mean(X.var(0))), rtol=1e-12)
    assert fit_standardization(X, "image")[0].tolist() == [X.mean()] * 3
    mean_n, scale_n = fit_standardization(X, False)
    assert not mean_n.any() and (scale_n == 1).all()
    Xs = standardize(X, mean, scale)
    assert Xs.dtype == np.float32
    np.testing.assert_allclose(Xs, ref.transform(X), rtol=1e-6, atol=1e-6)


def test_offsets_and_scales_are_removed_in_float64():
    X, _, _ = blobs3()
    ref = standardize(X, *fit_standardization(X))
    for Z in (X + 1.7e9, X * 1e20, X * 1e-20, X * 1e200):
        np.testing.assert_allclose(standardize(Z, *fit_standardization(Z)), ref, rtol=1e-6, atol=1e-6)
    for Z in ((X * 1e20).astype(np.float32), (X * 1e-20).astype(np.float32)):  # float32 input: squares overflow
        np.testing.assert_allclose(standardize(Z, *fit_standardization(Z)), ref, rtol=1e-5, atol=1e-5)


def test_a_constant_feature_gets_scale_one():
    X = np.c_[np.arange(5.0), np.full(5, 3.0)]
    mean, scale = fit_standardization(X)
    assert scale[1] == 1.0 and (standardize(X, mean, scale)[:, 1] == 0).all()


def test_a_feature_lost_to_an_outlier_warns_and_all_lost_is_refused():
    X, _, _ = blobs3()
    X[0, 0] = 1e30
    with pytest.warns(UserWarning, match=r"feature\(s\) 0 .*lost to the clustering"):
        fit_standardization(X)
    with pytest.raises(ValueError, match=r"'X' parameter cannot be standardised into float32 .*one cluster"):
        fit_standardization(X, "global")  # one scale for all: every feature is lost
    with pytest.raises(ValueError, match=r"feature\(s\) 0 "):
        fit_standardization(X[:, :1])
    with pytest.raises(ValueError, match=r"standardize='none'.*order one.*standardize=True"):
        fit_standardization(X[1:] * 1e-20, False)  # unscaled tiny values vanish next to a network's biases


def test_unrepresentable_values_are_refused_by_name():
    X, _, _ = blobs3()
    mean, scale = fit_standardization(X)
    Z = X.copy()
    Z[5, 2] = 1e30
    with pytest.raises(ValueError, match=r"'X' parameter .*row 5, feature 2 is 1e\+30"):
        standardize(Z, mean, scale)
    with pytest.raises(ValueError, match="'X' parameter"):  # no standardisation: 1e20 squared overflows float32
        standardize(X * 1e20, *fit_standardization(X * 1e20, "none"))
    assert np.abs(standardize(X * 1e18, *fit_standardization(X * 1e18, "none"))).max() < MAX_STANDARDIZED


def test_a_model_scale_is_checked_and_a_scalar_is_broadcast():
    mean, scale = check_standardization(np.zeros(3, dtype=np.float32), 2.5, 3)
    assert mean.dtype == scale.dtype == np.float64 and scale.tolist() == [2.5] * 3
    for bad in (0.0, -1.0, float("nan"), [1.0, 2.0]):
        with pytest.raises(ValueError, match="scale"):
            check_standardization(np.zeros(3), bad, 3)
    with pytest.raises(ValueError, match="mean"):
        check_standardization(np.array([0.0, np.inf, 0.0]), 1.0, 3)


# ---------------------------------------------------------------------- every estimator
@pytest.mark.parametrize("name", ESTIMATORS)
def test_large_offsets_and_scales_give_the_labels_of_x(name):
    X, _, yp = blobs3()
    base = _fit(name, X, yp)
    for Z in (X + 1.7e9, X * 1e20, X * 1e-20):
        m = _fit(name, Z, yp)
        np.testing.assert_array_equal(m.labels_, base.labels_)
        if name == "l2c":  # one set: the count probabilities must agree too
            np.testing.assert_allclose(m.count_proba_, base.count_proba_, rtol=1e-5)
            np.testing.assert_array_equal(m.predict(Z[:40]), base.predict(X[:40]))
        else:
            np.testing.assert_array_equal(m.predict(Z), base.predict(X))
    if name != "l2c":
        assert len(np.unique(base.labels_)) > 1


@pytest.mark.parametrize("name", ESTIMATORS)
def test_one_huge_outlier_does_not_collapse_the_rest(name):
    X, y, yp = blobs3()
    X[0, 0] = 1e30
    with pytest.warns(UserWarning, match=r"feature\(s\) 0 "):
        m = _fit(name, X, yp)
    if name == "l2c":
        assert np.isfinite(m.count_proba_).all()
    else:
        rest = m.labels_[1:]
        assert len(np.unique(rest)) > 1 and adjusted_rand_score(y[1:], rest) > 0.3
    Z = X[1:].copy()
    Z[0, 1] = 1e30  # far beyond the fitted scale in predict: refused by name, not NaN
    with pytest.raises(ValueError, match=r"'X' parameter .*cannot be represented"):
        m.predict(Z[:20])


@pytest.mark.parametrize("name", ("meanshift",))
def test_meanshift_keeps_the_digits_of_offsets_scales_and_outliers(name):
    X, y, _ = blobs3()
    base = make(name).fit(X)
    assert len(np.unique(base.labels_)) == 3
    for Z, bw in ((X + 1.7e9, 2.0), (X * 1e20, 2e20), (X * 1e-20, 2e-20)):
        m = make(name, bandwidth=bw).fit(Z)
        np.testing.assert_array_equal(m.labels_, base.labels_)
        np.testing.assert_array_equal(m.predict(Z), base.predict(X))
    np.testing.assert_array_equal(make(name, bandwidth=None).fit(X + 1.7e9).labels_,
                                  make(name, bandwidth=None).fit(X).labels_)
    Z = X.copy()
    Z[0, 0] = 1e30
    lab = make(name).fit(Z).labels_
    assert adjusted_rand_score(base.labels_[1:], lab[1:]) == 1.0 and lab[0] not in lab[1:]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_standardisation_round_trips_and_old_models_load(name, tmp_path):
    X, _, yp = blobs3()
    m = _fit(name, X * 1e20 + 1.7e9, yp, standardize="global" if name == "kcl" else True)
    mean, scale = ("mean_", "scale_") if name in ("dms", "kcl", "mcl", "ddc") else ("input_mean_", "input_scale_")
    assert isinstance(getattr(m, mean), np.ndarray) and getattr(m, scale).shape == (3,)
    m.save(tmp_path / "m")
    r = type(m).load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(getattr(r, mean), getattr(m, mean))
    np.testing.assert_array_equal(getattr(r, scale), getattr(m, scale))
    # a model written before the per-feature default: a float32 mean and one scale
    tensors, meta = m._export_state()
    key = "mean" if name in ("dms", "kcl", "mcl", "ddc") else "input_mean"
    tensors[key] = tensors[key].float()
    meta[key.replace("mean", "scale")] = 2.0
    old = make(name)
    old.n_features_in_ = 3
    old._import_state(tensors, meta)
    assert getattr(old, scale).tolist() == [2.0] * 3 and getattr(old, mean).dtype == np.float64


# ---------------------------------------------------------------------- item 5: the default is per feature
def test_per_feature_is_the_default_and_a_large_feature_does_not_drown_the_others():
    rng = np.random.default_rng(0)
    X, y, yp = blobs3(96)
    X = np.c_[X[:, :2], rng.normal(size=96) * 1000.0]  # a loud feature that tells nothing (as wine's proline)
    m = make("kcl", max_steps=60).fit(X, yp)
    np.testing.assert_allclose(m.scale_, StandardScaler().fit(X).scale_, rtol=1e-12)
    g = make("kcl", max_steps=60, standardize="global").fit(X, yp)
    assert np.unique(g.scale_).size == 1
    assert adjusted_rand_score(y, m.labels_) > adjusted_rand_score(y, g.labels_) + 0.2


@pytest.mark.parametrize("name", ESTIMATORS + ("meanshift",))
def test_standardize_and_verbose_are_checked_by_name(name):
    X, _, yp = blobs3()
    est = make(name)
    if hasattr(est, "standardize"):
        with pytest.raises(ValueError, match=r"The 'standardize' parameter must be .* Got 'yes' instead"):
            make(name, standardize="yes").fit(X, yp)
    if hasattr(est, "verbose"):
        with pytest.raises(ValueError, match=r"The 'verbose' parameter must be a bool. Got 'no' instead"):
            make(name, verbose="no").fit(X, yp)


# ---------------------------------------------------------------------- item 10
def test_meanshift_takes_random_state_and_refuses_an_overflowing_bandwidth():
    X, _, _ = blobs3()
    np.testing.assert_array_equal(make("meanshift", random_state=0).fit(X).labels_, make("meanshift").fit(X).labels_)
    with pytest.raises(ValueError, match="seed"):
        make("meanshift", random_state="x").fit(X)
    with pytest.raises(ValueError, match=r"'bandwidth' parameter must be a float in the range .* Got 1e\+300"):
        make("meanshift", bandwidth=1e300).fit(X)


@pytest.mark.parametrize("name", ESTIMATORS + ("meanshift",))
def test_fitted_attributes_are_numpy(name):
    X, _, yp = blobs3()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = _fit(name, X, yp) if name != "meanshift" else make(name).fit(X)
    public = {k: v for k, v in vars(m).items() if k.endswith("_") and not k.startswith("_")}
    assert not [k for k, v in public.items() if isinstance(v, torch.Tensor)]
