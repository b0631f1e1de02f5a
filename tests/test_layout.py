"""The package stays readable: one concept per module, no module over 450 lines."""

from pathlib import Path

import dmshift

MAX_LINES = 450


def test_no_module_is_over_450_lines():
    root = Path(dmshift.__file__).parent
    long = {str(p.relative_to(root)): n for p in sorted(root.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
