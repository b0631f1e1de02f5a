"""dmshift.demo: run_demo returns the table's numbers and writes the figure; the CLI prints them."""

import json

import numpy as np
import pytest

from dmshift.cli import main
from dmshift.constants import UNLABELLED
from dmshift.demo import format_table, partial_labels, run_demo

METHODS = ["DMS (subtract)", "k-means++ (k=10)", "Ward (k=10)", "HDBSCAN"]


def test_partial_labels_keeps_the_asked_share():
    y = np.arange(200) % 10
    p = partial_labels(y, 0.05, np.random.default_rng(0))
    known = p != UNLABELLED
    assert known.sum() == 10
    np.testing.assert_array_equal(p[known], y[known])


def test_run_demo_small(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "demo.png"
    res = run_demo(seed=1, fraction=0.1, out=out, progress=False, _n_samples=300,
                   _dms_params={"max_steps": 3, "batch_size": 8, "instance_size": (40, 60), "n_seeds": 20})
    assert list(res["methods"]) == METHODS
    assert res["n_samples"] == 300 and res["n_side_info"] == 30 and res["n_eval"] == 270
    for r in res["methods"].values():
        assert 0 <= r["acc"] <= 1 and -0.1 <= r["ami"] <= 1 and 0 <= r["nmi"] <= 1
        assert 0 <= r["noise"] <= 1 and r["seconds"] >= 0
    assert res["methods"]["k-means++ (k=10)"]["n_clusters"] == 10
    assert res["methods"]["k-means++ (k=10)"]["acc"] > 0.5  # the baselines are real
    assert res["dms_training"]["steps"] == 3
    assert res["figure"] == str(out) and imread(str(out)).shape[:2] == (520, 1600)
    table = format_table(res)
    assert all(m in table for m in METHODS) and "ACC" in table
    json.dumps(res)  # the CLI's --json needs this


def test_demo_command_prints_the_table(monkeypatch, capsys):
    fake = {"dataset": "digits", "n_samples": 10, "n_side_info": 1, "n_eval": 9, "n_classes": 10, "seed": 4,
            "fraction": 0.05, "figure": "x.png", "dms_training": {},
            "methods": {m: {"acc": 0.5, "nmi": 0.5, "ami": 0.5, "n_clusters": 3, "noise": 0.0, "seconds": 1.0}
                        for m in METHODS}}
    seen = {}

    def fake_run_demo(**kw):
        seen.update(kw)
        return fake

    monkeypatch.setattr("dmshift.demo.run_demo", fake_run_demo)
    assert main(["demo", "--seed", "4", "--fraction", "0.05", "--out", "x.png", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "HDBSCAN" in out and "figure written to x.png" in out
    assert seen["seed"] == 4 and seen["out"] == "x.png" and seen["progress"] is False
    assert main(["demo", "--no-plot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 4 and seen["out"] is None and seen["seed"] == 0


def test_demo_panels_draw_a_cluster_in_the_colour_of_its_digit(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from dmshift import demo, plot

    figures = []
    monkeypatch.setattr(plot, "save_figure", lambda fig, path: figures.append(fig) or path)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 15)
    X = rng.normal(size=(60, 3)) + 5 * np.eye(3, 3)[np.minimum(y, 2)]
    labels = np.array([12, 3, 40, 7])[y]  # cluster ids unrelated to the digits
    labels[-3:] = 99  # a cluster matched to no digit
    demo._figure(X, y, labels, np.ones(60, bool), tmp_path / "d.png", "DMS")
    true_ax, dms_ax = figures[0].axes[:2]
    colour = lambda ax: {c.get_label(): tuple(c.get_facecolor()[0][:3]) for c in ax.collections}
    t, d = colour(true_ax), colour(dms_ax)
    for digit, cluster in enumerate([12, 3, 40, 7]):
        assert d[str(cluster)] == t[str(digit)], (digit, cluster)
    assert d["99"] not in t.values()
