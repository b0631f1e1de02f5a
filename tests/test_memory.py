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


DEFAULT_PATH = textwrap.dedent("""
    import sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from dmshift import DMSClustering

    def status_mib(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024

    n, budget = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 6
    y = np.arange(600) % 3
    X = (rng.normal(size=(600, 16)) + centers[y]).astype(np.float32)
    yp = np.where(np.arange(600) % 5 == 0, y, -1)
    m = DMSClustering(hidden=(8, 8), max_steps=20, memory_budget=budget, device="cpu", random_state=0).fit(X, yp)
    Xn = (rng.normal(size=(n, 16)) + centers[rng.integers(0, 3, n)]).astype(np.float32)
    m.predict(Xn[:2000])  # warm the allocator on a small run
    with open("/proc/self/clear_refs", "w") as f:  # the peak restarts from the current size: fit's peak is forgotten
        f.write("5")
    base = status_mib("VmRSS")
    m.predict(Xn)
    print(status_mib("VmHWM") - base, m.smoothing_["applied"], m.smoothing_points_.shape[0])
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is read from /proc")
def test_default_predict_with_smoothing_stays_within_the_budget():
    n, budget = 200_000, 16 << 20
    out = subprocess.run([sys.executable, "-c", DEFAULT_PATH, str(n), str(budget)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mib, applied, n_landmarks = out.stdout.split()
    assert applied == "True" and int(n_landmarks) == 600  # the default path: the landmarks' vote
    # the standardised copy of the input (12 MiB), its embedding (6 MiB) and the points in the learnt graph's
    # space (6 MiB), labels and confidences (2.4 MiB), 1.5 x the budget (24 MiB), and 12 MiB for the allocator: the
    # same predict grows the peak by 40-57 MiB from one process to the next (12 runs); the landmarks' vote once
    # took 3 distance tiles at a time and (n, k) arrays (95 MiB)
    assert float(grown_mib) < 12.2 + 6.1 + 6.1 + 2.3 + 24 + 12, \
        f"predict grew the peak resident size by {float(grown_mib):.0f} MiB"
