"""A page of another origin, open in the same chromium as a logged-in person (a
session cookie) or as one whose browser holds Basic credentials, forges
requests against every family of routes: Hokusai's root-path and /api routes,
MLflow's /api and /ajax-api, the artifact PUT, key management. Every one is
refused and nothing changes; the forged evaluation runs no model code. The
same requests made by the server's own page, or with an explicit key, work:
the credential was live and the bodies were valid."""

from __future__ import annotations

import base64
import json
import re
import uuid

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient

from tests.support.browser import other_site, screenshot
from tests.support.hokusai_servers import SERVER_KINDS
from tests.support.mlflow_client import mlflow_client

FORGE = """async ({target, model, evaluate, evaluateForm, experiment, artifact}) => {
  const out = {};
  const send = async (label, path, init) => {
    try {
      const response = await fetch(target + path, {credentials: "include", ...init});
      out[label] = response.type === "opaque" ? "opaque" : response.status;
    } catch (error) {
      out[label] = "network-error";
    }
  };
  const plain = (label, path, body) => send(label, path, {
    method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
    body: JSON.stringify(body)});
  const json = (label, method, path, body) => send(label, path, {
    method, mode: "cors", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  // A form's text/plain body is name=value: the "=" lands inside a JSON string.
  const form = (label, path, name, value, enctype) => new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = label;
    document.body.appendChild(frame);
    const element = document.createElement("form");
    Object.assign(element, {method: "POST", action: target + path, target: label, enctype});
    const input = document.createElement("input");
    Object.assign(input, {type: "hidden", name, value});
    element.appendChild(input);
    document.body.appendChild(element);
    const done = () => { out[label] = "submitted"; resolve(); };
    frame.addEventListener("load", done, {once: true});
    setTimeout(done, 20000);
    element.submit();
  });
  const batch = {operations: [
    {action: "update_description", model: model + ":1", description: "forged"},
    {action: "delete", model: model + ":1"}]};
  await plain("root_batch", "/models/batch", batch);
  await plain("api_batch", "/api/models/batch", batch);
  await plain("root_evaluate", "/models/evaluate", evaluate);
  await plain("api_experiment", "/api/2.0/mlflow/experiments/create", {name: experiment + "-api"});
  await plain("ajax_experiment", "/ajax-api/2.0/mlflow/experiments/create",
              {name: experiment + "-ajax"});
  await json("json_key", "POST", "/api/keys", {name: "forged", scopes: ["admin"]});
  await json("json_experiment", "POST", "/ajax-api/2.0/mlflow/experiments/create",
             {name: experiment + "-json"});
  await json("json_evaluate", "POST", "/api/models/evaluate", evaluate);
  await json("json_delete_version", "DELETE", "/api/2.0/mlflow/model-versions/delete",
             {name: model, version: "1"});
  await send("artifact_put", "/api/2.0/mlflow-artifacts/artifacts/" + artifact,
             {method: "PUT", mode: "cors", body: "forged"});
  await send("ajax_artifact_put", "/ajax-api/2.0/mlflow-artifacts/artifacts/" + artifact + "-ajax",
             {method: "PUT", mode: "cors", body: "forged"});
  await send("read_keys", "/api/keys", {method: "GET", mode: "cors"});
  await form("form_batch", "/models/batch",
             '{"operations":[{"action":"update_description","model":"' + model +
             ':1","description":"forged', '"}]}', "text/plain");
  await form("form_evaluate", "/models/evaluate", evaluateForm, '"}', "text/plain");
  await form("form_experiment", "/api/2.0/mlflow/experiments/create",
             '{"name":"' + experiment + '-form', '"}', "text/plain");
  await form("form_urlencoded", "/ajax-api/2.0/mlflow/experiments/create", "name",
             experiment + "-urlencoded", "application/x-www-form-urlencoded");
  return out;
}"""

SAME_ORIGIN_CREATE = """async (name) => {
  const response = await fetch("/ajax-api/2.0/mlflow/experiments/create", {
    method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({name})});
  return response.status;
}"""


def _code_model():
    """A model that is code (a python_model); an evaluation runs it in the
    sandbox and tags the version with its run: proof an evaluation ran."""

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [0] * len(model_input)

    return Constant()


def _evaluation_run(server, model: str):
    version = requests.get(f"{server.url}/api/models/{model}/1", headers=_admin(server),
                           timeout=30)
    assert version.status_code == 200, version.text
    return version.json()["tags"].get("hokusai.evaluation_run_id")


@pytest.fixture(scope="module")
def victims(request, tmp_path_factory):
    """Per server kind: a model version to delete or edit, and a registered
    model whose code an evaluation runs."""
    made = {}
    for kind in SERVER_KINDS:
        server = request.getfixturevalue(kind)
        tag = uuid.uuid4().hex[:6]
        with mlflow_client(server.url, server.create_key("read,write")):
            client = MlflowClient(server.url)
            mlflow.set_experiment(f"xs-{tag}")
            with mlflow.start_run() as run:
                info = mlflow.pyfunc.log_model(name="model", python_model=_code_model(),
                                               pip_requirements=[])
            mlflow.register_model(info.model_uri, f"xs-eval-{tag}")
            client.create_registered_model(f"xs-{tag}")
            client.create_model_version(f"xs-{tag}", f"runs:/{run.info.run_id}/model",
                                        run_id=run.info.run_id, description="original")
        pd.DataFrame({"f0": [0.0, 1.0, 2.0, 3.0], "label": [0, 1, 0, 1],
                      "label=": [0, 1, 0, 1]}).to_csv(server.data_root / f"xs-{tag}.csv",
                                                      index=False)
        evaluate = {"model_name": f"xs-eval-{tag}", "model_version": 1,
                    "dataset_path": f"xs-{tag}.csv", "metrics": ["accuracy"], "target": "label"}
        made[server.name] = {"tag": tag, "model": f"xs-{tag}", "evaluate": evaluate}
    return made


def _admin(server):
    return {"X-API-Key": server.admin_key}


def _experiment_exists(server, name: str) -> bool:
    response = requests.get(server.url + "/api/2.0/mlflow/experiments/get-by-name",
                            params={"experiment_name": name}, headers=_admin(server), timeout=30)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


@pytest.mark.parametrize("held", ["session", "basic"])
def test_another_site_can_do_nothing(chromium, each_server_kind, victims, held):
    server = each_server_kind
    victim = victims[server.name]
    key = server.create_key("admin")  # every forged action would be allowed to it
    tag = f"{victim['tag']}-{held}"
    context = chromium.new_context()
    if held == "basic":
        # What a browser that cached Basic credentials does (Playwright's own
        # http_credentials only answer challenges, and this server sends no
        # Basic challenge): add them to every request to the server's origin,
        # whichever page makes it.
        basic = "Basic " + base64.b64encode(f"person:{key}".encode()).decode()
        context.route(re.compile(re.escape(server.url) + "/.*"), lambda route: route.continue_(
            headers={**route.request.all_headers(), "authorization": basic}))
    else:
        logged_in = context.request.post(server.url + "/login", data=json.dumps({}), headers={
            "Authorization": f"Bearer {key}", "Origin": server.url,
            "Content-Type": "application/json"})
        assert logged_in.ok, logged_in.text()
    evaluate = victim["evaluate"]
    evaluated_before = _evaluation_run(server, evaluate["model_name"])
    # The form's name ends inside the target's string; "=" and the value '"}'
    # complete it: the target is "label=", a column of the dataset too.
    evaluate_form = json.dumps({**{k: v for k, v in evaluate.items() if k != "target"},
                                "target": "label"})[:-2]
    try:
        with other_site() as site:
            page = context.new_page()
            page.goto(site)
            outcome = page.evaluate(FORGE, {
                "target": server.url, "model": victim["model"], "evaluate": evaluate,
                "evaluateForm": evaluate_form, "experiment": f"forged-{tag}",
                "artifact": f"forged-{tag}/file.txt"})
            screenshot(page, f"cross-site-{server.name}-{held}")
        assert len(outcome) == 16 and outcome["read_keys"] != 200, outcome

        mine = context.new_page()
        mine.goto(server.url + "/login")
        assert mine.evaluate(SAME_ORIGIN_CREATE, f"own-{tag}") == 200  # the credential works
    finally:
        context.close()

    version = requests.get(f"{server.url}/api/models/{victim['model']}/1", headers=_admin(server),
                           timeout=30)
    assert version.status_code == 200 and version.json()["description"] == "original"
    for suffix in ("api", "ajax", "json", "form=", "urlencoded"):
        assert not _experiment_exists(server, f"forged-{tag}-{suffix}"), suffix
    assert _experiment_exists(server, f"own-{tag}")
    assert "forged" not in {k.name for k in server.keystore.list()}
    for prefix in ("api", "ajax-api"):
        artifact = requests.get(f"{server.url}/{prefix}/2.0/mlflow-artifacts/artifacts/"
                                f"forged-{tag}/file.txt", headers=_admin(server), timeout=30)
        assert artifact.status_code != 200, artifact.text
    # The forged evaluations ran no model code (none tagged the version with a run).
    assert _evaluation_run(server, evaluate["model_name"]) == evaluated_before
    evaluated = requests.post(f"{server.url}/models/evaluate", json=evaluate,
                              headers={"Authorization": f"Bearer {key}"}, timeout=300)
    assert evaluated.status_code == 200, evaluated.text  # the same body, explicitly sent
    assert _evaluation_run(server, evaluate["model_name"]) == evaluated.json()["run_id"]


def test_explicit_credentials_are_not_affected(each_server_kind):
    """A page cannot set these on a cross-site request, so a foreign Origin
    does not matter; Basic from a program (no browser headers) is not a
    browser's saved credential either. The same Basic with a browser's
    headers is."""
    server = each_server_kind
    key = server.create_key("read,write")
    url = server.url + "/api/2.0/mlflow/experiments/create"
    basic = "Basic " + base64.b64encode(f"me:{key}".encode()).decode()
    foreign = {"Origin": "http://127.0.0.1:9"}
    for name, headers in (("bearer", {"Authorization": f"Bearer {key}", **foreign}),
                          ("apikey", {"Authorization": f"ApiKey {key}", **foreign}),
                          ("x-api-key", {"X-API-Key": key, **foreign}),
                          ("program-basic", {"Authorization": basic})):
        made = requests.post(url, json={"name": f"explicit-{uuid.uuid4().hex[:6]}-{name}"},
                             headers=headers, timeout=30)
        assert made.status_code == 200, (name, made.text)
    for headers in (foreign, {"Referer": "http://127.0.0.1:9/page"},
                    {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156"}):
        refused = requests.post(url, json={"name": f"forged-{uuid.uuid4().hex[:6]}"},
                                headers={"Authorization": basic, **headers}, timeout=30)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"].startswith("Cross-site request refused")


def test_json_routes_refuse_bodies_that_are_not_json(each_server_kind, victims):
    server = each_server_kind
    victim = victims[server.name]
    key = {"X-API-Key": server.create_key("read,write")}
    body = json.dumps({"operations": [{"action": "update_description",
                                       "model": f"{victim['model']}:1", "description": "x"}]})
    for path in ("/models/batch", "/api/models/batch"):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {**key, **({"Content-Type": content_type} if content_type else {})}
            refused = requests.post(server.url + path, data=body, headers=headers, timeout=30)
            assert refused.status_code == 415, refused.text
            assert "application/json" in refused.json()["detail"]
    version = requests.get(f"{server.url}/api/models/{victim['model']}/1", headers=key,
                           timeout=30)
    assert version.json()["description"] == "original"
