"""Unit tests of password and secret hashing."""

from auth.hashing import check_password, check_secret, hash_password, hash_secret


def test_password_hash_is_salted_and_checks():
    first, second = hash_password("password123"), hash_password("password123")
    assert first != second
    assert first.startswith("scrypt$")
    assert "password123" not in first
    assert check_password("password123", first)
    assert not check_password("password124", first)
    assert not check_password("password123", "not-a-hash")


def test_secret_hash_checks_in_constant_time_api():
    stored = hash_secret("secret_test_xyz789")
    assert stored != "secret_test_xyz789" and len(stored) == 64
    assert check_secret("secret_test_xyz789", stored)
    assert not check_secret("secret_test_xyz788", stored)
