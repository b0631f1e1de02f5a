"""Every script in examples/ runs with --quick (those needing absent shared data are skipped).

The scripts start together in one fixture and each test waits for its own, so their
start-up (importing torch and scikit-learn) overlaps.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# script -> data folder it needs under the data root (None: scikit-learn's bundled digits)
EXAMPLES = {
    "quickstart.py": None,
    "discover_unseen_classes.py": None,
    "images_by_object_vs_pose.py": "coil100",
    "text_topic_vs_sentiment.py": "trec_questions",
}
# scripts that run under torchrun; tests/test_distributed.py launches them
TORCHRUN_EXAMPLES = {"torchrun_predict.py"}


def _missing_data(folder):
    if folder is None:
        return None
    from dmshift.datasets import data_root
    try:
        root = data_root()
    except FileNotFoundError as exc:
        return f"no shared data: {exc}"
    return None if (root / folder).is_dir() else f"{root / folder} is absent"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "MPLBACKEND": "Agg", "DMSHIFT_CACHE": str(tmp_path_factory.mktemp("cache"))}
    procs = {}
    for script, folder in EXAMPLES.items():
        if _missing_data(folder) is None:
            procs[script] = subprocess.Popen([sys.executable, str(ROOT / "examples" / script), "--quick"],
                                             cwd=tmp_path_factory.mktemp("run"), env=env, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield procs
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_every_example_is_listed():
    found = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert found == sorted(set(EXAMPLES) | TORCHRUN_EXAMPLES)


@pytest.mark.parametrize("script", list(EXAMPLES))
def test_example_runs_quick(script, runs):
    reason = _missing_data(EXAMPLES[script])
    if reason is not None:
        pytest.skip(reason)
    out, err = runs[script].communicate(timeout=240)
    assert runs[script].returncode == 0, err[-2000:]
    assert out.strip()
