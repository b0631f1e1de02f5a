import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from dmshift import metrics


def test_accuracy_hand_computed():
    y = [0, 0, 0, 1, 1, 2]
    p = [5, 5, 1, 1, 1, 7]
    # best map: 5->0 (2), 1->1 (2), 7->2 (1): 5/6
    assert metrics.accuracy(y, p) == pytest.approx(5 / 6)
    assert metrics.accuracy(y, [9, 9, 9, 8, 8, 7]) == 1.0


def test_noise_counts_as_wrong():
    assert metrics.accuracy([0, 0, 1, 1], [0, -1, 1, 1]) == pytest.approx(0.75)
    assert metrics.accuracy([0, 0], [-1, -1]) == 0.0
    assert metrics.purity([0, 0, 1, 1], [0, -1, 1, 1]) == pytest.approx(0.75)


def test_nmi_is_eq5_and_matches_sklearn():
    y = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([1, 1, 0, 0, 2, 2])
    # eq. 5 by hand: I / sqrt(H(y) H(p))
    def H(a):
        _, c = np.unique(a, return_counts=True)
        q = c / c.sum()
        return -(q * np.log(q)).sum()
    joint = {}
    for a, b in zip(y, p):
        joint[(a, b)] = joint.get((a, b), 0) + 1
    n = len(y)
    I = sum(c / n * np.log((c / n) / ((y == a).mean() * (p == b).mean())) for (a, b), c in joint.items())
    assert metrics.nmi(y, p) == pytest.approx(I / np.sqrt(H(y) * H(p)))
    assert metrics.nmi(y, p) == pytest.approx(normalized_mutual_info_score(y, p, average_method="geometric"))
    assert metrics.ami(y, p) == pytest.approx(adjusted_mutual_info_score(y, p))


def test_pairwise_precision_recall():
    prec, rec = metrics.pairwise_precision_recall([0, 0, 1, 1], [0, 0, 0, 0])
    assert prec == pytest.approx(2 / 6) and rec == 1.0


def test_evaluate_and_errors():
    e = metrics.evaluate([0, 1, 1], [3, -1, 4])
    assert e["n_clusters"] == 2 and e["noise"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="y_pred"):
        metrics.accuracy([0, 1], [0])
