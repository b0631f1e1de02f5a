"""Dispatch from a data-set name to its loader: :func:`load` and :func:`available`.

This module only maps names to the loader functions of the family modules;
it reads no data itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ._base import Dataset
from .digits import load_digits, load_mnist, load_usps
from .faces import load_ar_faces, load_orl, load_umist
from .images import load_coil20, load_coil100
from .text import load_r8, load_reuters21578, load_trec

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "coil100": load_coil100,
    "coil20": load_coil20,
    "usps": load_usps,
    "orl": load_orl,
    "umist": load_umist,
    "ar_faces": load_ar_faces,
    "r8": load_r8,
    "reuters21578": load_reuters21578,
    "trec": load_trec,
}


def available() -> list[str]:
    """Return the names accepted by :func:`load`.

    Returns
    -------
    list of str
        Data-set names, in a fixed order (images first, then text). A name
        being listed does not mean its files are present on this machine.
    """
    return list(_LOADERS)


def load(name: str, root: str | os.PathLike | None = None, **kwargs) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    root : str or path-like, optional
        Data root; see :func:`data_root`.
    **kwargs
        Passed to the loader, e.g. ``n=10000`` for ``"mnist"``,
        ``features="minilm"`` for ``"trec"``/``"r8"``, ``top_k=10`` for
        ``"reuters21578"``.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    FileNotFoundError
        If the data files are missing (dmshift never downloads them).

    Examples
    --------
    >>> ds = load("digits")
    >>> ds.X.shape, ds.n_classes("parity")
    ((1797, 64), 2)
    """
    try:
        loader = _LOADERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"The 'name' parameter of load must be one of {available()}; got {name!r}."
        ) from None
    return loader(root, **kwargs)
