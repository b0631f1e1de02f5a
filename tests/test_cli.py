"""The ``dmshift`` command: fit -> predict -> evaluate on files, and one-line errors for bad input."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from dmshift.cli import main
from dmshift.cli import _methods
from dmshift.cli._files import UserError, read_features, read_labels, read_pairs, write_labels

SRC = str(Path(__file__).resolve().parents[1] / "src")
FAST = ["--param", "max_steps=30", "--param", "batch_size=16", "--param", "instance_size=[60,100]",
        "--param", "n_seeds=30"]


def _blobs(tmp_path, n=150):
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    y = np.repeat(np.arange(3), n // 3)
    X = centers[y] + 0.5 * rng.normal(size=(len(y), 3))
    partial = np.where(rng.random(len(y)) < 0.3, y, -1)
    csv = tmp_path / "train.csv"
    with open(csv, "w") as f:
        f.write("a,b,c,label\n")
        for row, lab in zip(X, partial):
            f.write(",".join(f"{v:.6f}" for v in row) + "," + ("" if lab < 0 else str(lab)) + "\n")
    truth = tmp_path / "truth.csv"
    np.savetxt(truth, y, fmt="%d", header="class", comments="")
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    return csv, truth, X, y


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert needle in err, err
    return err


def test_fit_predict_evaluate_plot_end_to_end(tmp_path, capsys):
    csv, truth, X, y = _blobs(tmp_path)
    model = tmp_path / "model"
    assert main(["fit", str(csv), "--labels-col", "label", "-o", str(model), "--seed", "0", "-q", *FAST]) == 0
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    assert "model written to" in capsys.readouterr().out

    pred, png = tmp_path / "out" / "pred.csv", tmp_path / "clusters.png"
    rc = main(["-q", "predict", str(model), str(csv), "--labels-col", "label", "-o", str(pred), "--plot", str(png)])
    assert rc == 0
    lines = pred.read_text().splitlines()
    assert lines[0] == "label,confidence" and len(lines) == len(y) + 1
    conf = np.array([float(r.split(",")[1]) for r in lines[1:]])
    assert np.all((conf >= 0) & (conf <= 1))
    from matplotlib.image import imread
    assert imread(str(png)).shape[:2] == (500, 500)
    capsys.readouterr()

    assert main(["evaluate", str(pred), str(truth)]) == 0
    table = capsys.readouterr().out
    assert "ACC" in table and "NMI" in table and "AMI" in table
    assert main(["evaluate", str(pred), str(truth), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n_evaluated"] == len(y) and scores["acc"] > 0.6

    # the same model on .npy input, written as .npy; labels agree with the CSV run
    assert main(["-q", "predict", str(model), str(tmp_path / "X.npy"), "-o", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), [int(r.split(",")[0]) for r in lines[1:]])


@pytest.mark.parametrize("kind, needle", [
    ("missing", "no such file"),
    ("not_numbers", "line 3, column 'b': 'x' is not a number"),
    ("wrong_shape", "must be a 2-D table"),
    ("mismatched_labels", "has 4 labels, but the features have 6 rows"),
])
def test_bad_files_give_one_line_errors(tmp_path, capsys, kind, needle):
    feats, extra = tmp_path / "X.csv", []
    if kind == "not_numbers":
        feats.write_text("a,b\n1,2\n3,x\n")
    elif kind == "wrong_shape":
        feats = tmp_path / "X.npy"
        np.save(feats, np.arange(6.0))
    elif kind == "mismatched_labels":
        np.savetxt(feats, np.zeros((6, 2)), delimiter=",")
        np.save(tmp_path / "y.npy", np.array([0, 1, -1, 0]))
        extra = ["--labels", str(tmp_path / "y.npy")]
    assert main(["fit", str(feats), "-o", str(tmp_path / "m"), *extra]) == 1
    _one_line_error(capsys, needle)
    assert not (tmp_path / "m").exists()


def test_command_line_mistakes_exit_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--no-such-option"])
    assert e.value.code == 2
    _one_line_error(capsys, "unrecognized arguments: --no-such-option")
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "only_one_file.csv"])
    assert e.value.code == 2
    _one_line_error(capsys, "required")


def test_unknown_param_lists_the_valid_ones(tmp_path, capsys):
    csv, *_ = _blobs(tmp_path, n=30)
    assert main(["fit", str(csv), "--labels-col", "label", "-o", str(tmp_path / "m"), "--param", "max_step=3"]) == 1
    err = _one_line_error(capsys, "unknown parameter 'max_step' for method 'dms'")
    assert "max_steps" in err and "n_seeds" in err
    assert main(["fit", str(csv), "--labels-col", "label", "-o", str(tmp_path / "m"), "--param", "max_steps=-1"]) == 1
    _one_line_error(capsys, "The 'max_steps' parameter must be")


def test_fit_without_side_information_is_refused(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.zeros((10, 2)))
    assert main(["fit", str(tmp_path / "X.npy"), "-o", str(tmp_path / "m")]) == 1
    _one_line_error(capsys, "learns from side information")


def test_predict_errors_name_the_problem(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.zeros((4, 3)))
    assert main(["predict", str(tmp_path / "nomodel"), str(tmp_path / "X.npy"), "-o", str(tmp_path / "l.csv")]) == 1
    _one_line_error(capsys, "no such model folder")
    assert main(["predict", str(tmp_path), str(tmp_path / "X.npy"), "-o", str(tmp_path / "l.parquet")]) == 1
    _one_line_error(capsys, "unsupported output file type '.parquet'")
    assert main(["predict", str(tmp_path), str(tmp_path / "X.npy"), "-o", str(tmp_path / "l.csv")]) == 1
    _one_line_error(capsys, "is not a dmshift model folder")


def test_parse_params_reads_json_python_literals_and_strings():
    got = _methods.parse_params(["max_steps=30", "lr=1e-3", "hidden=[64, 32]", "patience=null",
                                 "standardize=false", "kernel=concat", "instance_size=(20, 40)", "time_limit=None"])
    assert got == {"max_steps": 30, "lr": 1e-3, "hidden": (64, 32), "patience": None, "standardize": False,
                   "kernel": "concat", "instance_size": (20, 40), "time_limit": None}
    with pytest.raises(UserError, match="KEY=VALUE"):
        _methods.parse_params(["max_steps"])
    with pytest.raises(UserError, match="twice"):
        _methods.parse_params(["a=1", "a=2"])


def test_missing_method_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(_methods.METHODS, "nope", "dmshift.estimators.nope:NopeClustering")
    with pytest.raises(UserError, match="not part of this dmshift installation"):
        _methods.make_estimator("nope", {})


def test_global_options_reach_the_estimator():
    est = _methods.make_estimator("dms", {"max_steps": 5}, seed=3, device="cpu", progress=False)
    assert (est.max_steps, est.random_state, est.device, est.verbose) == (5, 3, "cpu", False)
    est = _methods.make_estimator("dms", {"random_state": 7}, seed=3)
    assert est.random_state == 7  # an explicit --param wins


def test_label_and_pair_files(tmp_path):
    (tmp_path / "y.csv").write_text("label\n1\n\n-1\n2\n")  # a blank cell is an unknown label: 4 labels
    np.testing.assert_array_equal(read_labels(tmp_path / "y.csv"), [1, -1, -1, 2])
    (tmp_path / "y2.csv").write_text("id,label\n0,3\n1,\n")
    np.testing.assert_array_equal(read_labels(tmp_path / "y2.csv", 2), [3, -1])
    (tmp_path / "p.csv").write_text("i,j,same\n0,1,1\n1,2,0\n")
    np.testing.assert_array_equal(read_pairs(tmp_path / "p.csv", 3), [[0, 1, 1], [1, 2, 0]])
    with pytest.raises(UserError, match="outside 0..1"):
        read_pairs(tmp_path / "p.csv", 2)
    (tmp_path / "bad.csv").write_text("0,1,2\n")
    with pytest.raises(UserError, match="'same' column must be 1"):
        read_pairs(tmp_path / "bad.csv", 5)
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.array([0, -1, 1]))
    X, y = read_features(tmp_path / "d.npz", labels_col="y")
    assert X.shape == (3, 2) and list(y) == [0, -1, 1]
    write_labels(tmp_path / "o.npz", np.array([0, -1]), np.array([0.9, 0.1]))
    with np.load(tmp_path / "o.npz") as z:
        assert list(z["labels"]) == [0, -1] and z["confidence"].shape == (2,)


def test_parquet_needs_pandas_or_is_read(tmp_path, capsys):
    path = tmp_path / "X.parquet"
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1")
        with pytest.raises(UserError, match="needs pandas and pyarrow"):
            read_features(path)
        return
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "lab": [0, -1]}).to_parquet(path)
    X, y = read_features(path, labels_col="lab")
    assert X.shape == (2, 2) and list(y) == [0, -1]


def test_bench_delegates_or_says_it_is_absent(monkeypatch, capsys):
    seen = {}
    fake = types.ModuleType("dmshift.bench")
    fake.main = lambda argv: seen.setdefault("argv", argv) and 0
    monkeypatch.setitem(sys.modules, "dmshift.bench", fake)
    assert main(["--quiet", "bench", "--table", "2", "--help"]) == 0
    assert seen["argv"] == ["--table", "2", "--help"]
    monkeypatch.setitem(sys.modules, "dmshift.bench", None)
    assert main(["bench", "--table", "2"]) == 1
    _one_line_error(capsys, "dmshift.bench is not part of this installation")


def test_predict_distributed_calls_the_sharded_entry_point(monkeypatch, capsys):
    seen = {}
    fake = types.ModuleType("dmshift.distributed")
    fake.sharded_predict_cli = lambda args: seen.setdefault("args", args) and 0
    monkeypatch.setitem(sys.modules, "dmshift.distributed", fake)
    assert main(["predict", "model", "a.npy", "b.npy", "-o", "labels.npy", "--distributed", "--recluster"]) == 0
    assert seen["args"].data == ["a.npy", "b.npy"] and seen["args"].recluster
    monkeypatch.setitem(sys.modules, "dmshift.distributed", None)
    assert main(["predict", "model", "a.npy", "-o", "labels.npy", "--distributed"]) == 1
    _one_line_error(capsys, "needs dmshift.distributed")


def test_every_command_has_help_with_examples(capsys):
    for cmd in ("demo", "fit", "predict", "evaluate"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "examples:" in capsys.readouterr().out


def test_installed_entry_point_reports_errors_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "dmshift.cli", "fit", str(tmp_path / "missing.csv"), "-o",
                        str(tmp_path / "m")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == f"dmshift fit: error: {tmp_path / 'missing.csv'}: no such file"


class _FakeUnsupervised:
    """A stand-in estimator: unsupervised, warns in fit, saves a folder."""

    _needs_side_info = False

    def __init__(self, *, k=2, random_state=None):
        self.k, self.random_state = k, random_state

    def fit(self, X, y=None):
        import warnings
        assert y is None
        warnings.warn("something to say\nover two lines")
        self.labels_ = np.arange(len(X)) % self.k
        return self

    def save(self, path, overwrite=False):
        Path(path).mkdir()


def test_unsupervised_method_ignores_side_information_and_warnings_are_one_line(tmp_path, monkeypatch, capsys):
    mod = types.ModuleType("dmshift_fake_methods")
    mod.Fake = _FakeUnsupervised
    monkeypatch.setitem(sys.modules, "dmshift_fake_methods", mod)
    monkeypatch.setitem(_methods.METHODS, "fake", "dmshift_fake_methods:Fake")
    np.save(tmp_path / "X.npy", np.zeros((6, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 1, -1, -1, -1, -1]))
    assert main(["fit", str(tmp_path / "X.npy"), "--method", "fake", "--labels", str(tmp_path / "y.npy"),
                 "-o", str(tmp_path / "m"), "--param", "k=3"]) == 0
    err = capsys.readouterr().err
    assert "method 'fake' is unsupervised: the side information is not used." in err
    assert "dmshift fit: warning: something to say over two lines\n" in err
    assert (tmp_path / "m").is_dir()


# ---------------------------------------------------------------------------- labels as people hold them
def test_one_column_labels_csv_keeps_a_row_per_blank_cell(tmp_path):
    (tmp_path / "y.csv").write_text("\n1\n\n2\n\n")  # no header; first, third and last labels unknown
    np.testing.assert_array_equal(read_labels(tmp_path / "y.csv", 5), [-1, 1, -1, 2, -1])
    (tmp_path / "h.csv").write_text("label\n0\n\nNA\n1\n")
    np.testing.assert_array_equal(read_labels(tmp_path / "h.csv", 4), [0, -1, -1, 1])


def test_class_names_in_label_cells_are_classes(tmp_path):
    (tmp_path / "X.csv").write_text("a,b,species\n1,2,setosa\n3,4,\n5,6,virginica\n7,8,setosa\n")
    X, y = read_features(tmp_path / "X.csv", labels_col="species")
    assert X.shape == (4, 2) and y.tolist() == [0, -1, 1, 0]
    (tmp_path / "names.csv").write_text("cat\n\ndog\ncat\n")  # no header: the first name is a label
    np.testing.assert_array_equal(read_labels(tmp_path / "names.csv", 4), [0, -1, 1, 0])
    (tmp_path / "mixed.csv").write_text("label\n1\ncat\n")
    with pytest.raises(UserError, match=r"mixed.csv: line 3: label 'cat' is not a number, but other labels are"):
        read_labels(tmp_path / "mixed.csv")


def test_a_row_with_an_extra_field_is_an_error_naming_file_and_line(tmp_path, capsys):
    (tmp_path / "X.csv").write_text("a,b\n1,2\n3,4,5\n6,7\n")
    with pytest.raises(UserError, match=r"X.csv: line 3 has 3 fields, expected 2"):
        read_features(tmp_path / "X.csv")
    (tmp_path / "L.csv").write_text("a,b,label\n1,2,0\n3,4,1,9\n6,7,\n")
    with pytest.raises(UserError, match=r"L.csv: line 3 has 4 fields, expected 3"):
        read_features(tmp_path / "L.csv", labels_col="label")
    (tmp_path / "N.csv").write_text("1,2\n3,4\n5,6,7\n")
    assert main(["fit", str(tmp_path / "N.csv"), "-o", str(tmp_path / "m"), "--method", "meanshift"]) == 1
    _one_line_error(capsys, "N.csv: line 3 has 3 fields, expected 2")


def test_forgetting_labels_col_gets_a_hint_naming_the_option(tmp_path, capsys):
    csv, *_ = _blobs(tmp_path)  # columns a, b, c, label with empty label cells
    assert main(["fit", str(csv), "-o", str(tmp_path / "m")]) == 1
    err = _one_line_error(capsys, "column 'label': '' is not a number")
    assert "--labels-col label" in err
    np.save(tmp_path / "X.npy", np.zeros((3, 2)))
    (tmp_path / "y.csv").write_text("id,class\n0,1\n1,\n2,0\n")
    assert main(["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.csv"), "-o", str(tmp_path / "m")]) == 1
    err = _one_line_error(capsys, "y.csv: has 2 columns (id, class); name the one holding the labels with --labels-col")
    np.testing.assert_array_equal(read_labels(tmp_path / "y.csv", 3, column="class"), [1, -1, 0])
    (tmp_path / "t.csv").write_text("id,class\n0,1\n")
    assert main(["evaluate", str(tmp_path / "t.csv"), str(tmp_path / "t.csv")]) == 1
    _one_line_error(capsys, "name the one holding the predicted labels with --pred-col")


def test_labels_col_picks_the_column_of_the_labels_file(tmp_path, capsys, monkeypatch):
    X = np.vstack([np.zeros((4, 2)), np.full((4, 2), 5.0)]) + np.random.default_rng(0).normal(size=(8, 2)) * 0.1
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "y.csv").write_text("id,class\n" + "".join(f"{i},{c}\n" for i, c in enumerate("aa b  bb"[:8])))
    seen = {}
    from dmshift.estimators.kcl import KCLClustering

    def fake_fit(self, X, y=None, **kw):
        seen["y"] = np.asarray(y)
        raise KeyboardInterrupt  # stop here: only the labels read matter

    monkeypatch.setattr(KCLClustering, "fit", fake_fit)
    assert main(["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.csv"), "--labels-col", "class",
                 "--method", "kcl", "-o", str(tmp_path / "m")]) == 130
    assert seen["y"].tolist() == [0, 0, -1, 1, -1, -1, 1, 1]


# ---------------------------------------------------------------------------- output paths, before any work
@pytest.mark.parametrize("option, value, needle", [
    ("--labels-out", "{d}", "is a folder; give a file name for the output"),
    ("--labels-out", "{f}/sub/labels.csv", "cannot write the output: {f} is a file, not a folder"),
    ("--labels-out", "labels.txt", "unsupported output file type '.txt'"),
])
def test_fit_checks_output_paths_before_reading_or_training(tmp_path, capsys, monkeypatch, option, value, needle):
    from dmshift.estimators.dms import DMSClustering
    monkeypatch.setattr(DMSClustering, "fit", lambda *a, **k: pytest.fail("trained before checking the output"))
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("")
    value = value.format(d=tmp_path / "d", f=tmp_path / "f")
    np.save(tmp_path / "X.npy", np.zeros((6, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 0, 1, 1, -1, -1]))
    assert main(["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(tmp_path / "m"),
                 option, value]) == 1
    err = _one_line_error(capsys, needle.format(f=tmp_path / "f"))
    assert value in err  # the path as the user gave it


def test_predict_and_demo_check_plot_paths_before_work(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    np.save(tmp_path / "X.npy", np.zeros((4, 3)))
    bad = str(tmp_path / "f" / "plot.png")
    assert main(["predict", str(tmp_path / "nomodel"), str(tmp_path / "X.npy"), "-o", str(tmp_path / "l.csv"),
                 "--plot", bad]) == 1
    _one_line_error(capsys, f"{bad}: cannot write the plot")
    assert main(["predict", str(tmp_path / "nomodel"), str(tmp_path / "X.npy"), "-o", str(tmp_path / "l.csv"),
                 "--plot", str(tmp_path / "p.txt")]) == 1
    _one_line_error(capsys, "unsupported plot file type '.txt'")
    assert main(["demo", "--out", bad]) == 1
    _one_line_error(capsys, f"{bad}: cannot write the figure")


def test_predict_plot_uses_the_models_projection(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from dmshift import plot
    from dmshift.io import load_model

    _, _, X, y = _blobs(tmp_path, n=60)
    X5 = np.hstack([X, np.random.default_rng(1).normal(size=(len(X), 2))]).astype(np.float32)
    np.save(tmp_path / "X5.npy", X5)
    np.save(tmp_path / "half.npy", X5[::2])
    np.save(tmp_path / "y.npy", np.where(np.arange(len(y)) % 3 == 0, y, -1))
    model = tmp_path / "m"
    assert main(["-q", "fit", str(tmp_path / "X5.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(model),
                 "--device", "cpu", "--seed", "0", "--param", "n_components=3", *FAST]) == 0
    used = []
    scatter = plot.scatter_2d
    monkeypatch.setattr(plot, "scatter_2d", lambda *a, **k: used.append(k.get("projection")) or scatter(*a, **k))
    for name in ("X5.npy", "half.npy"):
        assert main(["-q", "predict", str(model), str(tmp_path / name), "-o", str(tmp_path / "l.csv"),
                     "--plot", str(tmp_path / f"{name}.png")]) == 0
    origin, axes = plot.model_projection(load_model(model, device="cpu"))
    assert len(used) == 2
    for p in used:  # both files drawn on the model's axes, not on a PCA of their own
        assert p is not None
        np.testing.assert_allclose(p[0], origin)
        np.testing.assert_allclose(p[1], axes)


def test_predict_plot_of_a_model_without_projection_warns_and_draws(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _, _, X, y = _blobs(tmp_path, n=60)
    X4 = np.hstack([X, X[:, :1]]).astype(np.float32)
    np.save(tmp_path / "X4.npy", X4)
    np.save(tmp_path / "y.npy", np.where(np.arange(len(y)) % 3 == 0, y, -1))
    assert main(["-q", "fit", str(tmp_path / "X4.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(tmp_path / "m"),
                 "--method", "kcl", "--device", "cpu", "--seed", "0", "--param", "max_steps=3",
                 "--param", "n_clusters=3"]) == 0
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "X4.npy"), "-o", str(tmp_path / "l.csv"),
                 "--plot", str(tmp_path / "p.png")]) == 0
    assert "no 2-D projection of its own" in capsys.readouterr().err
    assert (tmp_path / "p.png").stat().st_size > 0


def test_standardize_option_reaches_the_estimator_and_is_checked(tmp_path, capsys):
    csv, _, _, _ = _blobs(tmp_path, n=60)
    out = tmp_path / "m"
    assert main(["--quiet", "fit", str(csv), "--labels-col", "label", "-o", str(out), "--standardize", "global",
                 *FAST]) == 0
    assert json.loads((out / "config.json").read_text())["params"]["standardize"] == "global"
    assert main(["fit", str(csv), "--labels-col", "label", "-o", str(tmp_path / "m2"), "--standardize", "none",
                 "--param", "standardize=global"]) == 1
    _one_line_error(capsys, "either --standardize or --param standardize")
    with pytest.raises(SystemExit):
        main(["fit", str(csv), "-o", str(tmp_path / "m3"), "--standardize", "yes"])
