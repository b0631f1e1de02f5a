"""Peak memory of DMS inference stays near the data's size plus ``memory_budget`` for a large n.

The (centers x points) confidence matrix of 200 centers on 400,000 points would take
320 MB in float32 (640 MB more as the float64 Gram input); inference must never hold it.
Run in a fresh process so that the peak resident size (``ru_maxrss``) measures this run.
"""

import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")

SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from dmshift import DMSClustering
    n, budget = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    Xs_small = rng.normal(size=(300, 2)).astype(np.float32)
    y = np.where(np.arange(300) % 5 == 0, (Xs_small[:, 0] > 0).astype(int), -1)
    m = DMSClustering(hidden=(8, 4), max_steps=2, batch_size=4, instance_size=(8, 12), n_seeds=200, max_iter=3,
                      memory_budget=budget, inference_side_info=False, device="cpu", random_state=0).fit(Xs_small, y)
    Xs = torch.as_tensor(rng.normal(size=(n, 2)), dtype=torch.float32)
    m._cluster(Xs[:5000], np.random.default_rng(0))  # warm the allocator on a small run
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    m._cluster(Xs, np.random.default_rng(0))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) / 1024, m.n_seeds_used_)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux only")
def test_inference_peak_memory_is_bounded_for_large_n():
    n, budget = 400_000, 16 << 20
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(n), str(budget)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mib, n_seeds = out.stdout.split()
    assert int(n_seeds) == 200
    # point-sized arrays (embeddings, labels, confidences: ~40 MiB) and tiles of the budget;
    # the whole (200, 400000) confidence matrix alone would add 305 MiB
    assert float(grown_mib) < 150, f"inference grew the peak resident size by {float(grown_mib):.0f} MiB"
