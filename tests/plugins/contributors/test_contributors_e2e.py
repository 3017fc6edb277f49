"""Proven contributors and the ledger end to end, on a server of its own (the
shared ones relax the rule): real signatures, the unmodified MLflow client."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import requests
import sqlalchemy as sa
from eth_account import Account
from eth_account.messages import encode_defunct
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from mlflow_hokusai.client import HokusaiClient, HokusaiClientError
from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.contributors import siwe
from tests.support.hokusai_servers import start_server
from tests.support.servers import BIN

PUBLIC_URL = "https://registry.example.test"
RULE = "HOKUSAI_REQUIRE_PROVEN_CONTRIBUTORS"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db_file = tmp_path_factory.mktemp("contributors") / "mlflow.db"
    running = start_server(tmp_path_factory, "contributors", f"sqlite:///{db_file}",
                           server="uvicorn", extra_env={"HOKUSAI_PUBLIC_URL": PUBLIC_URL,
                                                        RULE: "true"})
    yield running
    running.server.stop()


@pytest.fixture
def as_key(monkeypatch):
    def use(key):
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key)
    return use


def post(server, key, path, body):
    return requests.post(server.url + path, json=body, timeout=60,
                         headers={"Authorization": f"Bearer {key}"})


def source(client) -> dict:
    """A run of the caller's own to create versions from."""
    experiment = client.create_experiment(f"c-{uuid.uuid4().hex[:6]}")
    run_id = client.create_run(experiment).info.run_id
    return {"source": f"runs:/{run_id}/model", "run_id": run_id}


def test_proof_rule_ledger_and_verify(server, as_key):
    # evaluator: the benchmark values Alice sets count (test_benchmarks.py), so this
    # story's totals turn on her proven address alone
    alice_key = server.create_key("read,write,evaluator", owner="alice")
    mallory_key = server.create_key("read,write", owner="mallory")
    alice = Account.create()
    address = alice.address.lower()
    hokusai, mlflow_client = HokusaiClient(server.url), MlflowClient(server.url)

    # Alice proves her address through the app client (challenge, sign, link).
    as_key(alice_key)
    assert hokusai.prove_address(alice)["address"] == address
    assert [link["address"] for link in hokusai.my_contributor_links()["links"]] == [address]

    # Mallory, holding no link, cannot credit anything to Alice's address.
    as_key(mallory_key)
    name = f"m-{uuid.uuid4().hex[:6]}"
    mlflow_client.create_registered_model(name)
    run = source(mlflow_client)
    version = mlflow_client.create_model_version(name, **run).version
    with pytest.raises(RestException) as refused:
        mlflow_client.set_model_version_tag(name, version, "hokusai_contributor", alice.address)
    assert refused.value.error_code == "PERMISSION_DENIED" and RULE in refused.value.message
    with pytest.raises(RestException) as refused:
        mlflow_client.create_model_version(name, **run, tags={"hokusai_contributor": address})
    assert refused.value.error_code == "PERMISSION_DENIED" and RULE in refused.value.message
    assert "hokusai_contributor" not in mlflow_client.get_model_version(name, version).tags
    stolen_name = f"s-{uuid.uuid4().hex[:6]}"
    stolen = post(server, mallory_key, "/api/models/register-tokenized", {
        "model_uri": "mlflow-artifacts:/x/model", "model_name": stolen_name,
        "token_id": f"S-{uuid.uuid4().hex[:6]}", "metric_name": "accuracy",
        "baseline_value": 0.8, "contributor_address": address})
    assert stolen.status_code == 403 and RULE in stolen.text
    with pytest.raises(RestException):  # nothing half-written: the new model is gone again
        mlflow_client.get_registered_model(stolen_name)
    # Mallory cannot read the ledger or unlink Alice either.
    assert requests.get(server.url + "/api/ledger", timeout=60, headers={
        "Authorization": f"Bearer {mallory_key}"}).status_code == 403
    with pytest.raises(HokusaiClientError) as denied:
        hokusai.unlink_contributor("alice", address)
    assert denied.value.status == 403

    # Alice registers a token crediting herself; a second version improves it.
    token, model = f"HOK-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    registered = post(server, alice_key, "/api/models/register-tokenized", {
        "model_uri": "mlflow-artifacts:/x/model", "model_name": model, "token_id": token,
        "metric_name": "accuracy", "baseline_value": 0.8, "contributor_address": address})
    assert registered.status_code == 201, registered.text
    as_key(alice_key)
    mlflow_client.create_model_version(model, **source(mlflow_client), tags={
        "hokusai_token_id": token, "benchmark_metric": "accuracy", "benchmark_value": "0.85",
        "hokusai_contributor": alice.address})
    impact = hokusai.get_contributor_impact(address)
    assert [(c["version"], c["improvement_score"], c["delta_one"], c["address_verified"],
             c["verified"]) for c in impact["contributions"]] == [
        (1, 0.0, 0.0, True, True), (2, 0.05, 5.0, True, True)]
    assert impact["total_improvement_score"] == 0.05 and impact["total_delta_one"] == 5.0
    lineage = hokusai.get_lineage(model)
    assert [(e["delta_one"], e["address_verified"]) for e in lineage["lineage"]] == [
        (0.0, True), (5.0, True)]

    # The ledger holds the link and both registrations, in order.
    as_key(server.admin_key)
    events = [(e["event"], e["token_id"], e["version"]) for e in hokusai.ledger_entries()]
    assert ("contributor_linked", None, None) in events
    proof = next(e["data"] for e in hokusai.ledger_entries() if e["event"] ==
                 "contributor_linked" and e["data"]["address"] == address)
    assert siwe.signer(proof["message"], proof["signature"]) == address
    # (Alice's evaluator-set values add benchmark events between them: test_benchmarks.py)
    assert [e for e in events if e[0] == "version_registered"][-2:] == [
        ("version_registered", token, 1), ("version_registered", token, 2)]
    mine = hokusai.ledger_entries(token_id=token.lower())
    registrations = [e for e in mine if e["event"] == "version_registered"]
    assert [e["data"]["benchmark_value"] for e in registrations] == ["0.8", "0.85"]
    assert all(e["data"]["address_verified"] for e in registrations)

    # An admin unlinks; Alice can no longer credit her address (and it is recorded).
    hokusai.unlink_contributor("alice", address)
    assert hokusai.ledger_entries()[-1]["event"] == "contributor_unlinked"
    as_key(alice_key)
    with pytest.raises(RestException):
        mlflow_client.set_model_version_tag(model, "2", "hokusai_contributor", address)

    # `hokusai ledger verify` passes on this history and names a hand-edited entry.
    verify = [str(BIN / "hokusai"), "ledger", "verify", "--database-uri", server.database_uri]
    assert subprocess.run(verify, capture_output=True, text=True).returncode == 0
    edited = mine[0]["seq"]
    with get_engine(server.database_uri).begin() as connection:
        connection.execute(sa.text("UPDATE hokusai_ledger SET data = :d WHERE seq = :s"),
                           {"d": '{"benchmark_value":"0.1"}', "s": edited})
    result = subprocess.run(verify, capture_output=True, text=True)
    assert result.returncode == 1 and f"BROKEN at entry {edited} " in result.stderr


def test_link_refusals_over_http(server):
    key = server.create_key("read,write", owner="carol")
    carol, other = Account.create(), Account.create()
    issued = post(server, key, "/api/contributors/challenge", {"address": carol.address})
    assert issued.status_code == 201 and issued.json()["message"].startswith(
        "registry.example.test wants you")
    message = issued.json()["message"]
    def signature(account, text):
        return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex() \
            .removeprefix("0x")

    refused = post(server, key, "/api/contributors/link",
                   {"message": message, "signature": signature(other, message)})
    assert refused.status_code == 403 and refused.json()["reason"] == "wrong_signer"
    replayed = post(server, key, "/api/contributors/link",
                    {"message": message, "signature": signature(carol, message)})
    assert replayed.status_code == 409
    assert post(server, key, "/api/contributors/challenge",
                {"address": "0x123"}).status_code == 400
    assert post(server, key, "/api/contributors/link", {"message": "x"}).status_code == 400


def cli(server, key, *args, stdin=None):
    """``hokusai contributors ARGS`` as a user runs it, with ``key`` as the MLflow
    client's credentials."""
    env = {"PATH": str(BIN), "MLFLOW_TRACKING_URI": server.url, "MLFLOW_TRACKING_TOKEN": key}
    return subprocess.run([str(BIN / "hokusai"), "contributors", *args], capture_output=True,
                          text=True, env=env, input=stdin, timeout=120)


def test_the_cli_proves_lists_and_unlinks_an_address(server):
    key = server.create_key("read,write", owner="erin")
    erin = Account.create()
    address = erin.address.lower()
    issued = cli(server, key, "challenge", "--address", erin.address)
    assert issued.returncode == 0, issued.stderr
    message = issued.stdout.removesuffix("\n")
    assert siwe.domain(message) == "registry.example.test"
    signature = "0x" + erin.sign_message(encode_defunct(text=message)).signature.hex() \
        .removeprefix("0x")
    linked = cli(server, key, "link", "--message-file", "-", "--signature", signature,
                 stdin=issued.stdout)
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.strip() == f"Linked {address} to erin"
    listed = cli(server, key, "me")
    assert listed.returncode == 0, listed.stderr
    assert [link["address"] for link in json.loads(listed.stdout)["links"]] == [address]

    refused = cli(server, key, "unlink", "--principal", "erin", "--address", address)
    assert refused.returncode == 1 and "403" in refused.stderr
    unlinked = cli(server, server.admin_key, "unlink", "--principal", "erin",
                   "--address", address)
    assert unlinked.returncode == 0, unlinked.stderr
    assert unlinked.stdout.strip() == f"Unlinked {address} from erin"
    assert json.loads(cli(server, key, "me").stdout)["links"] == []


def test_a_relaxed_server_accepts_unproven_addresses_as_unverified(uvicorn_sqlite, as_key):
    """The shared servers run with HOKUSAI_REQUIRE_PROVEN_CONTRIBUTORS=false."""
    as_key(uvicorn_sqlite.create_key("read,write", owner="relaxed"))
    client = MlflowClient(uvicorn_sqlite.url)
    someone = Account.create().address.lower()
    name = f"r-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    for value in ("0.5", "0.6"):
        client.create_model_version(name, **source(client), tags={
            "benchmark_value": value, "hokusai_contributor": someone})
    impact = HokusaiClient(uvicorn_sqlite.url).get_contributor_impact(someone)
    assert [(c["delta_one"], c["address_verified"]) for c in impact["contributions"]] == [
        (None, False), (10.0, False)]  # v1: no token, no earlier value: no baseline
    as_key(uvicorn_sqlite.admin_key)  # an admin's word counts as proof
    client.set_model_version_tag(name, "2", "hokusai_contributor", someone)
    impact = HokusaiClient(uvicorn_sqlite.url).get_contributor_impact(someone)
    assert [c["address_verified"] for c in impact["contributions"]] == [False, True]


def test_ledger_pages_over_http(server):
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    key = server.create_key("read,write", owner="dave")
    for _ in range(2):  # two links: two entries, whatever other tests appended
        account = Account.create()
        issued = post(server, key, "/api/contributors/challenge", {"address": account.address})
        signed = account.sign_message(encode_defunct(text=issued.json()["message"]))
        assert post(server, key, "/api/contributors/link", {
            "message": issued.json()["message"],
            "signature": "0x" + signed.signature.hex().removeprefix("0x")}).status_code == 201
    everything = requests.get(server.url + "/api/ledger", headers=headers, timeout=60)
    assert everything.headers["Content-Type"].startswith("application/x-ndjson")
    seqs = [json.loads(line)["seq"] for line in everything.text.splitlines()]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2
    page = requests.get(server.url + "/api/ledger", params={"since": seqs[-2], "limit": 1},
                        headers=headers, timeout=60)
    assert [json.loads(line)["seq"] for line in page.text.splitlines()] == [seqs[-1]]
    assert "Hokusai-Next-Since" not in page.headers
    first = requests.get(server.url + "/api/ledger", params={"limit": 1}, headers=headers,
                         timeout=60)
    assert first.headers["Hokusai-Next-Since"] == "1"
    for bad in ({"since": "-1"}, {"limit": "0"}, {"limit": "1001"}, {"token_id": "-x"},
                {"page": "2"}):
        refused = requests.get(server.url + "/api/ledger", params=bad, headers=headers,
                               timeout=60)
        assert refused.status_code == 400 and refused.json()["detail"], bad
