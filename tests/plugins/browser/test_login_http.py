"""The login flow over plain HTTP, on uvicorn and gunicorn: where browsers and
programs are sent, what the cookie looks like, who may log in, and that the
server will not start with sessions on and no secret."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import unquote

import requests

from tests.support.jwt_keys import jwt_token

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _login(server, key, **headers):
    return requests.post(server.url + "/login", json={"next": "/#/models"}, headers={
        "Authorization": f"Bearer {key}", "Origin": server.url, **headers}, timeout=30)


def test_browsers_go_to_the_login_page_programs_get_401(each_server_kind):
    url = each_server_kind.url
    for path, target in (("/", "/"), ("/hokusai/models/m?x=1", "/hokusai/models/m?x=1"),
                         ("/api/2.0/mlflow/experiments/search", None)):
        sent = requests.get(url + path, headers=HTML, allow_redirects=False, timeout=30)
        assert sent.status_code == 303, (path, sent.text)
        location = sent.headers["Location"]
        assert location.startswith("/login?next=")
        assert unquote(location.split("=", 1)[1]) == (target or path)
    assert requests.get(url + "/", timeout=30).status_code == 200  # the UI shell, for programs
    refused = requests.get(url + "/api/2.0/mlflow/experiments/search", timeout=30,
                           headers={"Accept": "application/json"})
    assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHENTICATED"
    page = requests.get(url + "/login?next=//evil.example/x", timeout=30)
    assert page.status_code == 200 and 'data-next="/"' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_session_cookie(each_server_kind):
    server = each_server_kind
    key = server.create_key("read")
    answer = _login(server, key)
    assert answer.status_code == 200 and answer.json()["next"] == "/#/models"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("hokusai_session=") and key not in cookie
    for attribute in ("HttpOnly", "SameSite=Lax", "Max-Age=43200", "Path=/"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP
    # Behind a TLS proxy on this host (both servers believe 127.0.0.1's X-Forwarded-Proto).
    secure = _login(server, key, **{"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200 and "Secure" in secure.headers["Set-Cookie"]

    session = requests.Session()
    session.cookies.set("hokusai_session", answer.cookies["hokusai_session"])
    assert session.get(server.url + "/hokusai/", headers=HTML, timeout=30).status_code == 200
    assert session.get(server.url + "/api/keys", timeout=30).status_code == 403  # a read key
    tampered = requests.get(server.url + "/hokusai/", headers=HTML, allow_redirects=False,
                            cookies={"hokusai_session": answer.cookies["hokusai_session"] + "x"},
                            timeout=30)
    assert tampered.status_code == 303
    assert tampered.headers["Set-Cookie"].startswith("hokusai_session=;")  # deleted


def test_who_may_log_in(each_server_kind):
    server = each_server_kind
    key = server.create_key("read")
    assert _login(server, key, Origin="http://127.0.0.1:9").status_code == 403
    no_origin = requests.post(server.url + "/login", json={}, timeout=30,
                              headers={"Authorization": f"Bearer {key}"})
    assert no_origin.status_code == 403
    assert _login(server, "hk_live_" + "x" * 36).status_code == 401
    jwt_login = _login(server, jwt_token("HS256" if "uvicorn" in server.name else "ES256"))
    assert jwt_login.status_code == 400 and "JWT" in jwt_login.json()["detail"]
    assert "Set-Cookie" not in jwt_login.headers


def _build_app(env) -> subprocess.CompletedProcess:
    """Build the app as a server worker does, in a process of its own (isolated,
    -I: the installed package, not a checkout's folder in the working directory)."""
    return subprocess.run([sys.executable, "-I", "-c", "from mlflow_hokusai.app import "
                           "create_app; create_app()"], env=env, capture_output=True, text=True,
                          timeout=300)


def test_sessions_on_without_a_secret_refuse_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOKUSAI_SESSION_SECRET", "MLFLOW_FLASK_SERVER_SECRET_KEY")}
    env.update(_MLFLOW_SERVER_FILE_STORE=f"sqlite:///{tmp_path}/mlflow.db",
               _MLFLOW_SGI_NAME="gunicorn")
    refused = _build_app(env)
    assert refused.returncode != 0 and "HOKUSAI_SESSION_SECRET" in refused.stderr
    assert _build_app({**env, "HOKUSAI_SESSIONS_ENABLED": "false"}).returncode == 0
    assert _build_app({**env, "MLFLOW_FLASK_SERVER_SECRET_KEY": "mlflow's"}).returncode == 0
