"""Proving addresses (SIWE, EIP-4361), in process: real signatures by keys the
test generates with eth-account, an injected clock, a fresh SQLite database."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.errors import HokusaiError
from mlflow_hokusai.plugins.contributors import siwe
from mlflow_hokusai.plugins.contributors.links import Links
from mlflow_hokusai.plugins.store import deltaone
from tests.support.clock import FakeClock

URL = "https://registry.example.test"
T0 = 1_800_000_000_000


@pytest.fixture
def links(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'links.db'}")
    migrate.upgrade(engine)
    return Links(engine, URL, challenge_minutes=10, clock=FakeClock(T0))


def sign(account, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex() \
        .removeprefix("0x")


def refused(call) -> HokusaiError:
    with pytest.raises(HokusaiError) as caught:
        call()
    assert 400 <= caught.value.status < 500
    return caught.value


def test_a_valid_signature_links_the_address(links):
    alice = Account.create()
    issued = links.challenge("alice", alice.address.lower())
    assert issued["message"].startswith(
        "registry.example.test wants you to sign in with your Ethereum account:\n"
        + alice.address + "\n")  # EIP-55 spelling, as EIP-4361 asks
    assert f"URI: {URL}\n" in issued["message"] and f"Nonce: {issued['nonce']}" in \
        issued["message"]
    linked = links.link("alice", issued["message"], sign(alice, issued["message"]))
    assert linked["address"] == alice.address.lower()
    assert links.holds("alice", alice.address.lower())
    assert not links.holds("bob", alice.address.lower())
    assert [row["address"] for row in links.of("alice")] == [alice.address.lower()]


def test_a_wrong_signer_is_refused(links):
    alice, mallory = Account.create(), Account.create()
    issued = links.challenge("mallory", alice.address.lower())
    error = refused(lambda: links.link("mallory", issued["message"],
                                       sign(mallory, issued["message"])))
    assert error.status == 403 and error.extra["reason"] == "wrong_signer"
    assert mallory.address.lower() in error.detail and alice.address.lower() in error.detail
    assert not links.holds("mallory", alice.address.lower())


def test_a_nonce_is_used_once(links):
    alice = Account.create()
    issued = links.challenge("alice", alice.address.lower())
    signature = sign(alice, issued["message"])
    links.link("alice", issued["message"], signature)
    links.unlink("alice", alice.address.lower())
    error = refused(lambda: links.link("alice", issued["message"], signature))
    assert error.status == 409 and error.extra["reason"] == "replayed"
    assert not links.holds("alice", alice.address.lower())


def test_a_failed_attempt_spends_the_nonce(links):
    alice, mallory = Account.create(), Account.create()
    issued = links.challenge("alice", alice.address.lower())
    refused(lambda: links.link("alice", issued["message"], sign(mallory, issued["message"])))
    assert refused(lambda: links.link("alice", issued["message"], sign(
        alice, issued["message"]))).extra["reason"] == "replayed"


def test_an_expired_challenge_is_refused(links):
    alice = Account.create()
    issued = links.challenge("alice", alice.address.lower())
    links.clock.now += 10 * 60_000  # exactly its lifetime
    error = refused(lambda: links.link("alice", issued["message"],
                                       sign(alice, issued["message"])))
    assert error.status == 400 and error.extra["reason"] == "expired"


def test_a_message_for_another_domain_is_refused(links):
    alice = Account.create()
    issued = links.challenge("alice", alice.address.lower())
    # What a phishing site would show: the same challenge, naming itself.
    forged = issued["message"].replace("registry.example.test", "registry.evil.test")
    error = refused(lambda: links.link("alice", forged, sign(alice, forged)))
    assert error.status == 400 and error.extra["reason"] == "domain"
    assert "registry.evil.test" in error.detail and "registry.example.test" in error.detail


def test_another_principals_nonce_and_an_altered_text_are_refused(links):
    alice = Account.create()
    issued = links.challenge("alice", alice.address.lower())
    assert refused(lambda: links.link("bob", issued["message"], sign(
        alice, issued["message"]))).extra["reason"] == "unknown_nonce"
    altered = issued["message"].replace("Chain ID: 1", "Chain ID: 5")
    assert refused(lambda: links.link("alice", altered, sign(
        alice, altered))).extra["reason"] == "altered"


def test_garbage_is_a_clear_400(links):
    assert refused(lambda: links.link("a", "no nonce here", "0x00")).extra["reason"] == \
        "malformed"
    alice = Account.create()
    issued = links.challenge("alice", alice.address.lower())
    assert refused(lambda: links.link("alice", issued["message"], "0x1234")) \
        .extra["reason"] == "malformed"


def test_signer_recovers_what_eth_account_recovers():
    # The server recovers with eth-keys (siwe.signer); wallets sign as eth-account
    # does, with a recovery id of 27/28, some hardware wallets with 0/1, EIP-155
    # signers with 35 + 2 * chain id + 0/1.
    account = Account.create()
    message = "Sign in: " + "x" * 200 + " ✓"  # the length prefix counts bytes
    signature = sign(account, message)
    raw = bytes.fromhex(signature[2:])
    r_s, v = raw[:64], raw[64]
    accepted = [signature, signature.upper().replace("0X", "0x"), "0X" + signature[2:],
                signature[2:], (r_s + bytes([v - 27])).hex(), (r_s + bytes([v - 27 + 37])).hex()]
    for value in accepted:
        recovered = Account.recover_message(encode_defunct(text=message), signature=value)
        assert siwe.signer(message, value) == recovered.lower() == account.address.lower(), value
    assert siwe.signer(message + ".", signature) not in (None, account.address.lower())
    refused = [(r_s + bytes([v + 2])).hex(), signature[:-2], signature + "00", signature[:-1],
               "0x" + "00" * 65, "0xzz" + signature[4:], "", signature + "\n",
               signature[:10] + " " + signature[10:], "0x" + "ff" * 65]
    for value in refused:
        assert siwe.signer(message, value) is None, value


def test_siwe_reads_only_its_own_lines():
    message = siwe.compose(public_url=URL, address="0x" + "ab" * 20, principal="p\nq",
                           nonce="abcdef0123456789", issued_at=T0, expires_at=T0 + 1000)
    assert siwe.domain(message) == "registry.example.test"
    assert siwe.field(message, "Nonce") == "abcdef0123456789"
    assert "'pq'" in message  # a newline in a principal's name cannot add a line
    assert siwe.field(message, "Expiration Time") == "2027-01-15T08:00:01Z"


@pytest.mark.parametrize("value, baseline, direction, improvement, points", [
    (0.85, 0.80, "higher", 0.05, 5.0),
    (0.83, 0.85, "higher", -0.02, -2.0),
    (0.1, 0.3, "lower", 0.2, 20.0),
    (0.87654321, 0.8, None, 0.07654321, 7.654321),
])
def test_improvement_and_delta_one_carry_no_float_noise(value, baseline, direction,
                                                        improvement, points):
    assert repr(deltaone.difference(value, baseline, direction)) == repr(improvement)
    assert repr(deltaone.points(improvement)) == repr(points)


def test_totals_carry_no_float_noise():
    assert repr(deltaone.total([0.1, 0.2, None])) == "0.3"  # 0.1 + 0.2 = 0.30000000000000004
