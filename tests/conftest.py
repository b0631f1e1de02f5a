import numpy as np
import pytest
import torch

# keep unit tests light on shared CI cores
torch.set_num_threads(1)


@pytest.fixture
def blobs():
    """Four well-separated 2-D blobs, 200 points, labels 0..3."""
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=200, centers=[[0, 0], [8, 0], [0, 8], [8, 8]], cluster_std=0.7, random_state=0)
    return X.astype(np.float32), y
