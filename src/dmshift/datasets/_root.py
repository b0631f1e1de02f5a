"""Where data sets and cached features live on disk.

This module resolves the data root (an explicit argument, the ``DMSHIFT_DATA``
environment variable, or a ``shared/data`` folder found by walking up), the
feature cache folder, and checks that the files a loader needs are present.
It is not a downloader: dmshift never fetches data over the network.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "DMSHIFT_DATA"
CACHE_ENV = "DMSHIFT_CACHE"

# Relative location of the data folder that is searched for in every parent
# directory, so that any checkout placed beside ``shared/`` finds it.
_SHARED_DATA = Path("shared") / "data"
_PACKAGE_DIR = Path(__file__).resolve().parent

_NO_DOWNLOAD = (
    "dmshift never downloads data: put the files there, set the environment "
    f"variable {DATA_ENV} to the data folder, or pass root=."
)


def _search_starts() -> list[Path]:
    """Folders from which the upward search for ``shared/data`` starts."""
    return [Path.cwd().resolve(), _PACKAGE_DIR]


def _discover() -> tuple[Path | None, list[Path]]:
    """Walk up from each start folder; return the first hit and all candidates."""
    looked: list[Path] = []
    for start in _search_starts():
        for folder in (start, *start.parents):
            candidate = folder / _SHARED_DATA
            if candidate in looked:
                continue
            looked.append(candidate)
            if candidate.is_dir():
                return candidate, looked
    return None, looked


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the folder that holds the data sets.

    Parameters
    ----------
    root : str or path-like, optional
        Explicit data folder. When given it wins over everything else.

    Returns
    -------
    pathlib.Path
        ``root`` if given; else the value of the ``DMSHIFT_DATA`` environment
        variable; else the first ``shared/data`` folder found by walking up
        from the current working directory, then from the installed package.

    Raises
    ------
    FileNotFoundError
        If ``root`` or ``DMSHIFT_DATA`` names a folder that does not exist, or
        if neither is set and no ``shared/data`` folder is found. The message
        lists where it looked and how to set ``DMSHIFT_DATA``.
    """
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"The data root passed as root={str(root)!r} is not a folder. "
                + _NO_DOWNLOAD
            )
        return path
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"{DATA_ENV} is set to {env!r}, which is not a folder. Point it "
                "at the folder that holds the data sets (e.g. mnist/, coil20/)."
            )
        return path
    found, looked = _discover()
    if found is not None:
        return found
    shown = "\n  ".join(str(p) for p in looked)
    raise FileNotFoundError(
        f"No data root found. root= was not given, {DATA_ENV} is not set, and "
        f"no shared/data folder exists at any of:\n  {shown}\n"
        f"Set it with e.g. `export {DATA_ENV}=/path/to/data` or pass root=. "
        "dmshift never downloads data."
    )


def require_files(root: Path, folder: str, *names: str) -> list[Path]:
    """Return ``root / folder / name`` for each name, checking they all exist.

    Raises
    ------
    FileNotFoundError
        Naming every missing path and the data root used.
    """
    paths = [root / folder / name for name in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = "\n  ".join(str(p) for p in missing)
        raise FileNotFoundError(
            f"Missing data file(s):\n  {shown}\n(data root: {root}). " + _NO_DOWNLOAD
        )
    return paths


def cache_dir() -> Path:
    """Return the folder for cached features.

    Returns
    -------
    pathlib.Path
        ``DMSHIFT_CACHE`` if set, else ``~/.cache/dmshift``. It is not created
        here; writers create it when they first store something.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dmshift"
