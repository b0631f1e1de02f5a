"""Fixtures for the data-set loader tests: the data root and an isolated cache."""

from pathlib import Path

import pytest

from dmshift.datasets import data_root


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep feature caches written by the tests out of the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DMSHIFT_CACHE", str(tmp_path_factory.mktemp("dmshift-cache")))
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root, or skip when no data are available on this machine."""
    try:
        return data_root()
    except FileNotFoundError as err:
        pytest.skip(f"no dmshift data root: {err}")


@pytest.fixture(scope="session")
def need(data_dir):
    """Return a function that gives ``data_dir / folder`` or skips if absent."""

    def _need(folder: str) -> Path:
        path = data_dir / folder
        if not path.is_dir():
            pytest.skip(f"data folder {path} is absent")
        return path

    return _need
