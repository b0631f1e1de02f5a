"""benchmarks/results/README.md lists every results file, and every file it links exists."""

import re
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.mark.skipif(not (RESULTS / "README.md").is_file(), reason="no benchmarks/results in this checkout")
def test_the_results_index_lists_every_file():
    text = (RESULTS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#/]+)\)", text))
    files = {p.name for p in RESULTS.iterdir() if p.is_file() and p.name != "README.md"}
    assert not linked - files, f"linked but missing: {sorted(linked - files)}"
    assert files == linked, f"not in the index: {sorted(files - linked)}"
