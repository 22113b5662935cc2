"""Patches of kombu and gunicorn internals run only on the library versions they were checked against."""

from __future__ import annotations

import email.utils
from importlib.metadata import version

import pytest
from gateway_common import serving, workers
from gateway_common.config import Settings
from gateway_common.patches import UncheckedLibraryVersion
from gunicorn import util

PATCHES = [
    ("kombu", workers, "KOMBU_CHECKED", workers._survive_restore_on_dead_connection, "restore_unacked"),
    ("gunicorn", serving, "GUNICORN_CHECKED", serving.json_error_pages, "write_error"),
    ("gunicorn", serving, "GUNICORN_CHECKED", serving.cached_date_header, "http_date"),
]


@pytest.fixture(autouse=True)
def _restore_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gunicorn patches replace module functions; the test leaves them as it found them.
    monkeypatch.setattr(util, "write_error", util.write_error)
    monkeypatch.setattr(util, "http_date", util.http_date)


@pytest.mark.parametrize(("distribution", "module", "constant", "apply", "patched"), PATCHES)
def test_each_patch_was_checked_against_the_installed_version(distribution, module, constant, apply, patched):
    assert version(distribution) in getattr(module, constant)
    apply()  # raises UncheckedLibraryVersion otherwise


@pytest.mark.parametrize(("distribution", "module", "constant", "apply", "patched"), PATCHES)
def test_each_patch_refuses_a_version_it_was_not_checked_against(
    monkeypatch, distribution, module, constant, apply, patched
):
    monkeypatch.setattr(module, constant, ("0.0.1",))
    with pytest.raises(UncheckedLibraryVersion) as raised:
        apply()
    message = str(raised.value)
    assert f"{distribution} {version(distribution)} is installed" in message
    assert patched in message
    assert "https://github.com/" in message


def test_a_celery_app_is_not_made_on_an_unchecked_kombu(monkeypatch):
    monkeypatch.setattr(workers, "KOMBU_CHECKED", ("0.0.1",))
    with pytest.raises(UncheckedLibraryVersion, match="restore_unacked"):
        workers.make_celery(Settings.from_env("patches-test"), "patches-test")


def test_the_cached_date_header_is_gunicorns_format():
    serving.cached_date_header()
    first = util.http_date()
    assert email.utils.parsedate_to_datetime(first).tzname() == "UTC"
    assert first.endswith(" GMT")
    assert util.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
