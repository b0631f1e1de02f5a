"""Lazy attributes for dmshift's packages: a public name is imported when first used.

``import dmshift`` then costs what :mod:`dmshift.constants` costs, not PyTorch and
scikit-learn: a package lists its public names and the submodule holding each, and
:func:`attach` gives it the module-level ``__getattr__`` and ``__dir__`` (PEP 562) that
import the submodule on first access. ``from dmshift import DMSClustering``,
``dmshift.DMSClustering``, ``__all__`` and ``dir()`` work as with eager imports.
"""

from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["attach"]


def attach(package: str, names: dict[str, str], eager: dict | None = None
           ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose ``names`` map to relative modules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict of str to str
        Public name -> module relative to the package (``".dms"``) that defines it.
    eager : dict, optional
        The package's globals, listed by ``__dir__`` next to the lazy names.
    """
    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        if eager is not None:
            eager[name] = value  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(eager or ()) | set(names))

    return __getattr__, __dir__
