"""Start-up: ``import dmshift`` and the command's help, argument errors and ``evaluate`` load no PyTorch.

Each check runs in a fresh interpreter, since this test session has imported everything.
"""

import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "sklearn.cluster", "sklearn.decomposition", "sklearn.neighbors", "matplotlib")


def _loaded_after(code: str, cwd=None) -> set:
    probe = (f"import sys\nsys.path.insert(0, {SRC!r})\n{code}\n"
             f"print('LOADED:', *(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.strip().splitlines()[-1].split()[1:])


def test_import_dmshift_loads_no_torch_and_keeps_its_public_names():
    assert _loaded_after("import dmshift, dmshift.estimators, dmshift.datasets, dmshift.bench, dmshift.nets\n"
                         "assert 'DMSClustering' in dir(dmshift) and 'MeanShift' in dmshift.__all__\n"
                         "assert 'load' in dir(dmshift.datasets)") == set()
    import dmshift
    from dmshift import DMSClustering, SideInfo  # noqa: F401
    from dmshift.estimators import KCLClustering

    assert dmshift.DMSClustering is DMSClustering and DMSClustering.__module__ == "dmshift.estimators.dms"
    assert KCLClustering is dmshift.KCLClustering
    assert all(getattr(dmshift, n) is not None for n in dmshift.__all__)
    assert set(dmshift.__all__) <= set(dir(dmshift))


def test_unknown_attribute_is_an_attribute_error():
    import dmshift
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        dmshift.Nope  # noqa: B018


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["fit", "--no-such-option"], [], ["--version"]])
def test_help_and_argument_errors_load_no_torch(argv):
    code = f"from dmshift.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _loaded_after(code) == set()


def test_evaluate_loads_no_torch_nor_estimators(tmp_path):
    (tmp_path / "p.csv").write_text("label\n0\n0\n1\n1\n")
    (tmp_path / "t.csv").write_text("label\n1\n1\n0\n\n")
    code = "from dmshift.cli import main\nassert main(['evaluate', 'p.csv', 't.csv', '--json']) == 0"
    assert _loaded_after(code, cwd=tmp_path) == set()


def test_a_fresh_process_loads_a_model_of_an_estimator_it_has_not_imported(tmp_path):
    import numpy as np

    from dmshift.estimators.meanshift import MeanShift

    X = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 5].astype(np.float32)
    MeanShift(bandwidth=2.0, device="cpu").fit(X).save(tmp_path / "m")
    code = (f"from dmshift.io import load_model\nm = load_model({str(tmp_path / 'm')!r}, device='cpu')\n"
            "assert type(m).__name__ == 'MeanShift'")
    assert "torch" in _loaded_after(code)
