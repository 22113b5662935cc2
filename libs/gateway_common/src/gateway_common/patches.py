"""Guard for patches of a library's internals: each runs only on the versions it was checked against."""

from __future__ import annotations

from importlib.metadata import version


class UncheckedLibraryVersion(RuntimeError):
    """The installed library is not a version the patch was read against."""


def require_checked(distribution: str, checked: tuple[str, ...], patched: str, upstream: str) -> None:
    """Refuse to patch ``patched`` unless the installed ``distribution`` is one of the ``checked`` versions."""
    installed = version(distribution)
    if installed not in checked:
        raise UncheckedLibraryVersion(
            f"{distribution} {installed} is installed, but the patch of {patched} was checked against "
            f"{distribution} {', '.join(checked)} only (as read at {upstream}): compare {patched} in "
            f"{installed} with it, then add {installed} to the patch's checked versions, or drop the "
            "patch if upstream fixed the problem"
        )
