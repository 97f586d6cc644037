"""The in-repo copies of ../shared (tests/data/shared) are current.

The suite reads only the copies (a lone clone has no ../shared); when ../shared is
present next to the repository, every copy must be byte-identical to its original.
"""

from __future__ import annotations

import pytest

from tests.shared_data import COPIED, COPY, ORIGINAL

MAX_COPY_BYTES = 5 * 1024 * 1024  # keep the repository light: no copy of 5 MiB or more


def test_every_copy_the_tests_read_is_in_the_repository_and_small() -> None:
    for name in COPIED:
        path = COPY / name
        assert path.is_file(), f"{path} is missing (copy it from ../shared/{name})"
        assert path.stat().st_size < MAX_COPY_BYTES, f"{path} is 5 MiB or more"


@pytest.mark.skipif(
    not ORIGINAL.is_dir(),
    reason=f"{ORIGINAL} (../shared) is absent: the in-repo copies cannot be compared",
)
@pytest.mark.parametrize("name", COPIED)
def test_the_in_repo_copy_is_byte_identical_to_the_shared_original(name: str) -> None:
    original = ORIGINAL / name
    assert original.is_file(), f"{original} no longer exists; drop it from COPIED"
    assert (COPY / name).read_bytes() == original.read_bytes(), (
        f"tests/data/shared/{name} differs from ../shared/{name}: copy it again "
        "(see tests/data/shared/README.md)"
    )
