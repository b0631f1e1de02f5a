"""Every script in examples/ runs with --quick (those needing absent shared data are skipped)."""

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


def test_every_example_is_listed():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py") if p.name in EXAMPLES) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", list(EXAMPLES))
def test_example_runs_quick(script, tmp_path):
    folder = EXAMPLES[script]
    if folder is not None:
        from dmshift.datasets import data_root
        try:
            root = data_root()
        except FileNotFoundError as exc:
            pytest.skip(f"no shared data: {exc}")
        if not (root / folder).is_dir():
            pytest.skip(f"{root / folder} is absent")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "DMSHIFT_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip()
