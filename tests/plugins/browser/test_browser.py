"""A person in Debian's chromium: log in with a key, browse the MLflow UI and the
Hokusai view, manage keys, log out; a revoked key ends the session. One browser
and the shared servers serve every test here (CI has two cores)."""

from __future__ import annotations

import re
import time
import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.support.browser import screenshot
from tests.support.mlflow_client import mlflow_client

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
LOAD = 60_000  # ms Playwright waits for a page element: a slow shared machine


@pytest.fixture(scope="module")
def ui_data(uvicorn_sqlite):
    """An experiment with a run and an artifact, and a tokenized model with
    three versions (benchmark values, two contributors), made by clients."""
    server = uvicorn_sqlite
    # evaluator: its values count as verified; admin: so do the addresses it sets
    key = server.create_key("read,evaluator,admin")
    tag = uuid.uuid4().hex[:6]
    name, token = f"ui-model-{tag}", f"UI-{tag}"
    with mlflow_client(server.url, key):
        experiment_id = mlflow.create_experiment(f"ui-exp-{tag}")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_metric("accuracy", 0.9)
            mlflow.log_text("hello from a run", "hello.txt")
        client = MlflowClient(server.url)
        client.create_registered_model(name)
        for value, contributor in (("0.80", ALICE), ("0.86", BOB), ("0.84", ALICE)):
            client.create_model_version(name, f"runs:/{run.info.run_id}/model",
                                        run_id=run.info.run_id, tags={
                                            "hokusai_token_id": token,
                                            "benchmark_metric": "accuracy",
                                            "benchmark_value": value,
                                            "hokusai_contributor": contributor})
    return {"experiment_id": experiment_id, "experiment": f"ui-exp-{tag}",
            "run_id": run.info.run_id, "model": name, "token": token}


def log_in(page, url: str, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda current: "/login" not in current, timeout=LOAD)


def works(server, key: str) -> int:
    return requests.get(server.url + "/api/2.0/mlflow/experiments/search?max_results=1",
                        headers={"X-API-Key": key}, timeout=30).status_code


def test_a_person_logs_in_browses_and_logs_out(chromium, uvicorn_sqlite, ui_data):
    server = uvicorn_sqlite
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LOAD)
    try:
        page.goto(server.url + "/")
        assert re.search(r"/login\?next=%2F$", page.url), page.url
        screenshot(page, "01-login")
        key = server.create_key("admin")
        log_in(page, server.url, key)
        assert page.url.startswith(server.url + "/")
        cookie = next(c for c in context.cookies() if c["name"] == "hokusai_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0
        assert "hk_" not in cookie["value"]  # the key id, never the key

        page.goto(f"{server.url}/#/experiments")
        page.get_by_text(ui_data["experiment"]).first.wait_for()
        screenshot(page, "02-experiments")
        page.goto(f"{server.url}/#/experiments/{ui_data['experiment_id']}/runs/"
                  f"{ui_data['run_id']}/artifacts")
        page.get_by_text("hello.txt").first.click()
        page.get_by_text("hello from a run").first.wait_for()  # the file, read with the session
        screenshot(page, "03-run-artifacts")
        page.goto(f"{server.url}/#/models")
        # Found with the page's own search: the shared server may list a page of
        # other tests' models before this one.
        search = page.get_by_placeholder("Search registered models")
        search.fill(ui_data["model"])
        search.press("Enter")
        page.get_by_text(ui_data["model"]).first.wait_for()
        screenshot(page, "04-registered-models")
        page.goto(f"{server.url}/#/models/{ui_data['model']}/versions/2")
        page.get_by_text("Version 2").first.wait_for()
        screenshot(page, "05-model-version")

        page.goto(f"{server.url}/hokusai/")
        page.get_by_role("link", name=ui_data["model"]).click()
        page.locator("svg.chart").wait_for()
        assert page.locator("svg.chart circle.point").count() == 3
        assert page.inner_text("#token") == ui_data["token"]
        assert page.get_attribute("#drift", "href") == \
            f"/api/v1/monitoring/{ui_data['model']}/drift?format=html"  # not deployed
        ranked = page.locator("#contributors tbody tr").all_inner_texts()
        assert BOB in ranked[0] and ALICE in ranked[1]  # +0.06 ahead of -0.02
        screenshot(page, "06-hokusai-model")
        _manage_keys(page, server)

        page.goto(server.url + "/logout")
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login$"))
        assert not [c for c in context.cookies() if c["name"] == "hokusai_session"]
        page.goto(server.url + "/#/models")
        assert "/login" in page.url
        screenshot(page, "08-logged-out")
        log_in(page, server.url, key)  # and back where the person was going, UI route too
        assert page.url == server.url + "/#/models"
    finally:
        context.close()


def _manage_keys(page, server) -> None:
    """Create, rotate and revoke a key on the keys page (through /api/keys)."""
    page.goto(server.url + "/hokusai/keys")
    page.fill("#create-key input[name=name]", "made-in-browser")
    page.select_option("#create-key select[name=scopes]", "read")
    page.click("#create-key button[type=submit]")
    page.locator("#secret").wait_for()
    created = page.inner_text("#secret-value")
    assert created.startswith("hk_") and works(server, created) == 200
    screenshot(page, "07-key-created")
    page.reload()
    row = page.locator("#keys tr", has_text="made-in-browser")
    row.locator("button.rotate").click()
    page.locator("#secret").wait_for()  # hidden again since the reload, until rotated
    rotated = page.inner_text("#secret-value")
    assert rotated.startswith("hk_") and rotated != created
    time.sleep(1.0)  # the key cache's bound (HOKUSAI_KEY_CACHE_TTL_SECONDS)
    assert works(server, created) == 401 and works(server, rotated) == 200
    page.reload()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#keys tr", has_text="made-in-browser").filter(
        has=page.locator("button.revoke")).locator("button.revoke").click()
    page.wait_for_load_state("load")
    page.locator("#keys tr", has_text="made-in-browser").filter(
        has_text="revoked").nth(1).wait_for()
    time.sleep(1.0)
    assert works(server, rotated) == 401


def test_revoking_the_key_ends_its_session(chromium, uvicorn_sqlite):
    server = uvicorn_sqlite
    key, key_id = server.create_key("read"), None
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(LOAD)
    try:
        page.goto(server.url + "/hokusai/")
        assert "/login?next=%2Fhokusai%2F" in page.url
        log_in(page, server.url, key)
        assert page.url == server.url + "/hokusai/"
        key_id = next(k.id for k in server.keystore.list() if k.prefix == key[:12])
        server.keystore.revoke(key_id)
        time.sleep(1.0)  # the key cache's bound (HOKUSAI_KEY_CACHE_TTL_SECONDS)
        page.goto(server.url + "/#/experiments")
        assert "/login" in page.url
        assert not [c for c in context.cookies() if c["name"] == "hokusai_session"]
        screenshot(page, "09-revoked-key-back-at-login")
    finally:
        context.close()
