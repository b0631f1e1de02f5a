"""Tests of dmshift.bench: the registry, quick runs on digits, the side-information split, errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from dmshift.bench import EXPERIMENTS, random_split, restricted_split, score
from dmshift.bench.data import load_case
from dmshift.bench.methods import METHODS, Fit
from dmshift.cli import main as cli_main
from dmshift.constants import NOISE, UNLABELLED
from dmshift.metrics import evaluate

torch.set_num_threads(1)

STAMP = ("- command: `dmshift bench", "- commit: ", "- machine: ", "torch ", "- device: cpu", "- seeds: ")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_list(capsys):
    assert cli_main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("table3", "table2", "table4", "ablation", "fig5", "threshold", "seeds"):
        assert name in out
    assert set(EXPERIMENTS) == {"table3", "table2", "table4", "ablation", "fig5", "threshold", "seeds"}


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["bench", "--help"])
    assert exc.value.code == 0
    assert "--max-steps" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["bench", "nosuch"], "unknown experiment 'nosuch'"),
    (["bench", "table3", "--methods", "nosuch"], "unknown method"),
    (["bench", "table3", "--datasets", "nosuch"], "unknown data set"),
    (["bench", "threshold", "--methods", "kmeans"], "does not run kmeans"),
    (["bench", "table3", "--dms", "nosuch=1"], "no parameter 'nosuch'"),
    (["bench", "table3", "--dms", "smoothing"], "--dms must be PARAM=VALUE"),
    (["bench", "table3", "--dms", "kernel=concat"], "'kernel' is set by the benchmark"),
    (["bench", "table3", "--first-seed", "-1"], "--first-seed must be"),
])
def test_bad_arguments_give_one_line_error(argv, message, capsys, tmp_path):
    assert cli_main([*argv, "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_quick_runs_write_stamped_results(tmp_path, capsys):
    assert cli_main(["-q", "bench", "table3", "--quick", "--seeds", "2", "--methods", "dms-subtract,kmeans,hdbscan",
                     "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert cli_main(["-q", "bench", "threshold", "--quick", "--seeds", "1", "--device", "cpu", "--max-steps", "5",
                     "--out", str(tmp_path)]) == 0
    for name, n_rows in (("table3", 2 * 3), ("threshold", 1 + len(EXPERIMENTS["threshold"].quick_grid))):
        md = (tmp_path / f"bench-{name}-quick.md").read_text()
        for line in STAMP:
            assert line in md, (name, line)
        assert "status: finished" in md
        rows = _rows(tmp_path / f"bench-{name}-quick.csv")
        assert len(rows) == n_rows
        assert {r["experiment"] for r in rows} == {name}
        for r in rows:
            assert int(r["n_side"]) + int(r["n_scored"]) == int(r["n"]) == 300
            assert 0.0 <= float(r["acc"]) <= 1.0 and float(r["seconds"]) >= 0.0
    md = (tmp_path / "bench-threshold-quick.md").read_text()
    assert "max_steps override: 5" in md and "--max-steps 5" in md
    assert "± " in (tmp_path / "bench-table3-quick.md").read_text()  # two seeds: mean ± std
    rows = _rows(tmp_path / "bench-table3-quick.csv")
    assert {r["seed"] for r in rows} == {"0", "1"}
    hdb = [r for r in rows if r["method"] == "HDBSCAN"]  # deterministic: fitted once, scored per seed
    assert len({r["seconds"] for r in hdb}) == 1 and "deterministic" in hdb[0]["note"]
    assert len({r["seconds"] for r in rows if r["method"] == "k-means++ (true k)"}) == 2


def test_random_split_is_disjoint_and_complete():
    y = np.arange(1000) % 7
    s = random_split(y, 0.05, seed=3)
    assert s.side.size == 50 and np.intersect1d(s.side, s.scored).size == 0
    assert np.array_equal(np.union1d(s.side, s.scored), np.arange(1000))
    assert np.array_equal(np.flatnonzero(s.y_side != UNLABELLED), s.side)
    assert np.array_equal(s.y_side[s.side], y[s.side])
    assert np.array_equal(random_split(y, 0.05, seed=3).side, s.side)
    assert not np.array_equal(random_split(y, 0.05, seed=4).side, s.side)


def test_score_uses_exactly_the_complement():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=400)
    s = random_split(y, 0.05, seed=0)
    labels = y.copy()
    labels[s.side] = NOISE  # wrong on every side-information point, right on every other
    r = score(y, labels, s.scored)
    assert r["acc"] == 1.0 and r["noise"] == 0.0
    other = rng.integers(0, 5, size=400)
    assert score(y, other, s.scored) == {k: v for k, v in evaluate(y[s.scored], other[s.scored]).items()
                                         if k != "purity"}


def test_harness_scores_only_points_without_side_information(tmp_path, monkeypatch):
    """A method that is right on the scored points and says NOISE on the side-information points scores 1."""
    y = load_case("digits", quick=True).y

    def oracle(X, y_side, k, seed, opts):
        labels = y.copy()
        labels[y_side != UNLABELLED] = NOISE
        return Fit(labels, 0.0)

    monkeypatch.setitem(METHODS, "oracle", ("oracle", oracle, True))
    assert cli_main(["-q", "bench", "table3", "--quick", "--seeds", "2", "--methods", "oracle",
                     "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "bench-table3-quick.csv")
    assert len(rows) == 2
    for r in rows:
        assert float(r["acc"]) == 1.0 and float(r["noise"]) == 0.0 and float(r["ami"]) == pytest.approx(1.0)
        assert int(r["n_side"]) == 15 and int(r["n_scored"]) == 285


def test_dms_params_and_first_seed_reach_every_fit(tmp_path, monkeypatch):
    seen = []

    def spy(X, y_side, k, seed, opts):
        seen.append((seed, dict(opts.dms_params)))
        return Fit(np.zeros(len(X), dtype=int), 0.0)

    monkeypatch.setitem(METHODS, "spy", ("spy", spy, True))
    assert cli_main(["-q", "bench", "table3", "--quick", "--seeds", "2", "--first-seed", "5", "--methods", "spy",
                     "--dms", "smoothing=None", "--dms", "threshold=0.5", "--dms", "seeding=random",
                     "--out", str(tmp_path)]) == 0
    expected = {"smoothing": None, "threshold": 0.5, "seeding": "random"}
    assert seen == [(5, expected), (6, expected)]
    assert {r["seed"] for r in _rows(tmp_path / "bench-table3-quick.csv")} == {"5", "6"}
    md = (tmp_path / "bench-table3-quick.md").read_text()
    assert "library defaults except smoothing=None, threshold=0.5, seeding='random'" in md


def test_restricted_split():
    y = np.repeat(np.arange(10), 30)
    s = restricted_split(y, 0.5, 4, seed=1)
    assert s.seen_classes.size == 5
    assert set(np.unique(y[s.side])) == set(s.seen_classes)
    assert np.all(np.bincount(y[s.side], minlength=10)[s.seen_classes] == 4)
    assert np.intersect1d(s.side, s.scored).size == 0 and s.side.size + s.scored.size == y.size


def test_missing_data_is_skipped(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("DMSHIFT_DATA", str(empty))
    out = tmp_path / "out"
    assert cli_main(["-q", "bench", "table3", "--quick", "--datasets", "mnist10k", "--methods", "kmeans",
                     "--out", str(out)]) == 0
    md = (out / "bench-table3-quick.md").read_text()
    assert "Skipped: mnist10k" in md and "every data set skipped" in md
    assert _rows(out / "bench-table3-quick.csv") == []


def test_table2_on_shared_data(tmp_path):
    from dmshift.datasets import data_root
    try:
        root = data_root()
    except FileNotFoundError:
        pytest.skip("no shared data folder")
    if not (root / "usps").is_dir():
        pytest.skip("USPS is not in the shared data folder")
    assert cli_main(["-q", "bench", "table2", "--quick", "--datasets", "usps", "--seeds", "1",
                     "--methods", "kmeans,dms-subtract", "--max-steps", "3", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "bench-table2-quick.csv")
    assert {r["task"] for r in rows} == {"parity", "ge5"} and {r["k"] for r in rows} == {"2"}


@pytest.mark.parametrize("name", ["ddc", "mmdc"])
def test_unsupervised_peers_are_rows_without_side_information(name):
    import warnings

    from dmshift.bench.methods import Options, run_method
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    X = (np.array([[0, 0], [6, 0], [0, 6]])[y] + rng.normal(scale=0.5, size=(120, 2))).astype(np.float32)
    y_side = np.where(np.arange(120) % 10 == 0, y, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DDC and MMDC warn when handed side information
        fit = run_method(name, X, y_side, 3, 0, Options(device="cpu", max_steps=50))
    assert fit.labels.shape == (120,)
    assert set(np.unique(fit.labels)) <= {0, 1, 2}
    assert fit.seconds > 0


def test_recluster_smooths_as_fit_does_when_given_the_side_information(blobs):
    from dmshift import DMSClustering
    from dmshift.bench.experiments import recluster
    X, y = blobs
    y_side = np.where(np.arange(y.size) % 8 == 0, y, -1)
    model = DMSClustering(max_steps=20, batch_size=16, instance_size=(30, 40), n_seeds=30, smoothing="graph",
                          random_state=0).fit(X, y_side)
    labels, _ = recluster(model, X, 1)
    assert not model.smoothing_["applied"]
    np.testing.assert_array_equal(model.predict(X), labels)  # no stale landmarks vote
    labels, _ = recluster(model, X, 1, y_side)
    assert model.smoothing_["applied"] and np.array_equal(labels, model.labels_)


def test_table3_results_say_how_far_dms_is_from_the_paper(tmp_path):
    from dmshift.bench.experiments import PAPER_TABLE3
    from dmshift.bench.report import Results

    res = Results(tmp_path / "t3", "table3", "Intrinsic tasks", "", [("command", "`x`")])
    res.references[("coil100", "object")] = PAPER_TABLE3[("coil100", "object")]
    for seed, acc in ((0, 0.95), (1, 0.96)):
        res.add(dataset="coil100", task="object", n=10, k=2, method="DMS (subtract)", setting="", subset="scored",
                seed=seed, n_side=1, n_scored=9, seconds=1.0, note="", acc=acc, nmi=0.98, ami=0.97, n_clusters=2,
                noise=0.0)
    text = (tmp_path / "t3.md").read_text()
    assert "Paper, DMS (subtract) on COIL-100 at 128×128 (here 32×32): ACC 0.990, NMI 0.996, AMI 0.994." in text
    assert "ACC 0.955 (-0.035), NMI 0.980 (-0.016), AMI 0.970 (-0.024)" in text


@pytest.mark.parametrize("name", ["label-spreading", "ss-kmeans"])
def test_label_peers_learn_from_the_side_information_and_are_timed(name):
    from dmshift.bench.methods import Options, run_method
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    X = (np.array([[0, 0], [6, 0], [0, 6]])[y] + 5 + rng.normal(scale=0.5, size=(120, 2))).astype(np.float32)
    y_side = np.where(np.arange(120) % 10 == 0, y, -1)
    fit = run_method(name, X, y_side, 3, 0, Options(device="cpu"))
    assert evaluate(y, fit.labels)["acc"] > 0.95
    assert fit.seconds > 0
    assert METHODS[name][2]  # a method that learns from side information: fitted per seed
    if name == "ss-kmeans":
        assert fit.note == "k=3 estimated"


@pytest.mark.parametrize("experiment", ["table2", "table3", "fig5"])
def test_label_peers_are_default_rows(experiment):
    assert {"label-spreading", "ss-kmeans"} <= set(EXPERIMENTS[experiment].methods)


def test_ablation_switches_parts_off_through_public_parameters(tmp_path, monkeypatch):
    from dmshift import DMSClustering
    from dmshift.bench.experiments import ABLATION_SETTINGS
    seen = []

    def spy(X, y_side, k, seed, opts):
        seen.append(dict(opts.dms_params))
        return Fit(np.zeros(len(X), dtype=int))

    monkeypatch.setitem(METHODS, "dms-subtract", ("DMS (subtract)", spy, True))
    assert cli_main(["-q", "bench", "ablation", "--seeds", "1", "--datasets", "digits", "--dms", "threshold=0.5",
                     "--out", str(tmp_path)]) == 0
    assert seen == [{"threshold": 0.5, **p} for p in ABLATION_SETTINGS.values()]
    known = DMSClustering().get_params()
    assert all(set(p) <= set(known) for p in ABLATION_SETTINGS.values())
    rows = _rows(tmp_path / "bench-ablation.csv")
    assert [r["setting"] for r in rows] == [*ABLATION_SETTINGS, "input-space graph alone"]
    assert rows[-1]["method"] == "LabelSpreading (knn)" and float(rows[-1]["acc"]) > 0.8
    md = (tmp_path / "bench-ablation.md").read_text()
    assert "| kernel untrained alone |" in md and "scikit-learn's LabelSpreading(kernel='knn')" in md


def test_ablation_quick_run_fits_dms_with_each_setting(tmp_path):
    assert cli_main(["-q", "bench", "ablation", "--quick", "--seeds", "1", "--device", "cpu", "--max-steps", "3",
                     "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "bench-ablation-quick.csv")
    settings = [r["setting"] for r in rows]
    assert settings == ["default", "kernel alone", "kernel untrained", "labels from the learnt graph", "input-space graph alone"]
    assert all(float(r["seconds"]) > 0 for r in rows)
