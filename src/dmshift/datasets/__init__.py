"""Data-set loaders for dmshift: images, faces and text with several labellings.

Every loader reads local files under the data root (see :func:`data_root`)
and returns a :class:`Dataset`: float32 features ``X``, a default labelling
``y`` and alternative labellings in ``tasks``. dmshift never downloads data.

Typical use::

    from dmshift.datasets import available, load

    ds = load("mnist", n=10000)   # MNIST-10k: first 10,000 of train + test
    X, y = ds.X, ds.y             # (10000, 784) float32, (10000,) int64
    parity = ds.labels("parity")  # another task on the same points
"""

from .._lazy import attach as _attach

__all__ = [
    "Dataset",
    "available",
    "cache_dir",
    "data_root",
    "load",
    "load_ar_faces",
    "load_coil100",
    "load_coil20",
    "load_digits",
    "load_mnist",
    "load_orl",
    "load_r8",
    "load_reuters21578",
    "load_trec",
    "load_umist",
    "load_usps",
]

__getattr__, __dir__ = _attach(__name__, {
    "Dataset": "._base",
    "available": "._registry",
    "load": "._registry",
    "cache_dir": "._root",
    "data_root": "._root",
    "load_digits": ".digits",
    "load_mnist": ".digits",
    "load_usps": ".digits",
    "load_ar_faces": ".faces",
    "load_orl": ".faces",
    "load_umist": ".faces",
    "load_coil20": ".images",
    "load_coil100": ".images",
    "load_r8": ".text",
    "load_reuters21578": ".text",
    "load_trec": ".text",
}, globals())
