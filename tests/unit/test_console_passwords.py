"""Console passwords: argon2id for every new hash, older scrypt hashes still verified, the
sandbox accounts (in either scheme) refused outside the sandbox, and the CLI prints argon2id."""

import json

import pytest
import typer

from services.router.ops import cli
from services.router.ops.console.accounts import (
    SANDBOX_PASSWORDS,
    SANDBOX_USERS,
    ConsoleUser,
    Role,
    authenticate,
    hash_password,
    scrypt_hash,
    verify_password,
)
from services.router.settings import RouterSettings
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security


def test_an_account_configured_with_scrypt_still_logs_in():
    legacy = ConsoleUser(name="asa", role=Role.OPERATOR, password_hash=scrypt_hash("a passphrase"))
    assert authenticate([legacy], "asa", "a passphrase") == legacy
    assert authenticate([legacy], "asa", "another one") is None


def test_argon2_hashes_are_argon2id_with_the_rfc9106_profile():
    stored = hash_password("a long passphrase")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password("a long passphrase", stored)
    assert not verify_password("a long passphrase", stored[:-4] + "AAAA")
    assert not verify_password("x", "$argon2id$garbage")
    with pytest.raises(ValueError):
        ConsoleUser(name="a", role=Role.VIEWER, password_hash="md5$abc")


def test_the_sandbox_accounts_are_argon2_and_recognised_in_both_schemes():
    assert all(u.password_hash.startswith("$argon2id$") for u in SANDBOX_USERS)
    assert authenticate(list(SANDBOX_USERS), "ops", SANDBOX_PASSWORDS["ops"]) is not None
    old = scrypt_hash(SANDBOX_PASSWORDS["ops"], salt=b"carebridge-sandbox-ops")
    for stored in (SANDBOX_USERS[0].password_hash, old):
        with pytest.raises(ValueError, match="sandbox console accounts"):
            RouterSettings(
                environment="production",
                **ROUTER_SECRETS,
                console_users=[{"name": "ops", "role": "operator", "password_hash": stored}],
                **SECURE_KAFKA,
                **SECURE_HTTP,
            )


def test_hash_password_prints_an_argon2id_account(monkeypatch, capsys):
    monkeypatch.setattr(typer, "prompt", lambda *a, **k: "a long passphrase")
    assert cli.main(["hash-password", "--name", "asa", "--role", "admin"]) == 0
    account = json.loads(capsys.readouterr().out)
    assert account["name"] == "asa" and account["role"] == "admin"
    assert account["password_hash"].startswith("$argon2id$")
    assert verify_password("a long passphrase", account["password_hash"])
