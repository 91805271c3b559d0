"""The sandbox console accounts' hashes are written out in accounts.py (computing them at
import cost 0.65 s of CPU in every process): they must be exactly what the hashing gives."""

import pytest

from services.router.ops.console.accounts import (
    SANDBOX_PASSWORDS,
    SANDBOX_SALTS,
    SANDBOX_USERS,
    hash_password,
    verify_password,
)


@pytest.mark.parametrize("user", SANDBOX_USERS, ids=lambda u: u.name)
def test_each_written_out_hash_is_its_passwords(user):
    password, salt = SANDBOX_PASSWORDS[user.name], SANDBOX_SALTS[user.name]
    assert user.password_hash == hash_password(password, salt=salt)
    assert verify_password(password, user.password_hash)
