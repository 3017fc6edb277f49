"""The browser plugin's decisions, in-process: session cookies, the same-origin
rule, which credentials a browser holds, navigations and ``next`` targets, and
JSON routes refusing bodies that are not JSON."""

from __future__ import annotations

import base64

import flask
import pytest
from itsdangerous import timed

from mlflow_hokusai.errors import (
    AuthenticationFailed,
    ConfigurationError,
    CrossSiteRefused,
    UnsupportedMediaType,
)
from mlflow_hokusai.pipeline import RequestInfo
from mlflow_hokusai.plugins.auth.credentials import SESSION_COOKIE, extract
from mlflow_hokusai.plugins.browser.csrf import SameOrigin, browser_held, origin_of
from mlflow_hokusai.plugins.browser.navigation import is_navigation, login_location, safe_next
from mlflow_hokusai.plugins.browser.sessions import Sessions, session_secret
from mlflow_hokusai.settings import Settings
from mlflow_hokusai.web import json_object

HOST = "127.0.0.1:5000"


def request(method="POST", path="/models/batch", query="", **headers) -> RequestInfo:
    headers = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return RequestInfo(method, path, {"host": HOST, **headers}, query, "127.0.0.1")


def test_a_session_names_the_key_id_and_never_the_key(monkeypatch):
    sessions = Sessions("secret-a", hours=1, same_site="lax")
    cookie = sessions.issue("0123456789abcdef")
    payload = base64.urlsafe_b64decode(cookie.split(".")[0] + "==")
    assert payload == b'{"k":"0123456789abcdef"}'
    assert sessions.key_id(cookie) == "0123456789abcdef"
    with pytest.raises(AuthenticationFailed) as forged:
        Sessions("secret-b", hours=1, same_site="lax").key_id(cookie)
    assert forged.value.reason == "invalid"
    tampered = base64.urlsafe_b64encode(b'{"k":"fedcba9876543210"}').decode().rstrip("=")
    with pytest.raises(AuthenticationFailed):
        sessions.key_id(tampered + cookie[cookie.index("."):])
    # An hour later (itsdangerous reads the clock through its module's time).
    real_time = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real_time() + 3601)
    with pytest.raises(AuthenticationFailed) as expired:
        sessions.key_id(cookie)
    assert expired.value.reason == "expired"


def test_sessions_need_a_secret(monkeypatch):
    monkeypatch.delenv("MLFLOW_FLASK_SERVER_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="HOKUSAI_SESSION_SECRET"):
        session_secret(Settings())
    assert session_secret(Settings(session_secret="s")) == "s"


def test_mlflow_secret_is_the_fallback(monkeypatch):
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "from-mlflow")
    assert session_secret(Settings()) == "from-mlflow"
    assert session_secret(Settings(session_secret="own")) == "own"


def test_the_session_cookie_is_the_last_credential_read():
    cookie = f"other=1; {SESSION_COOKIE}=signed"
    assert extract(request(cookie=cookie), allow_query=True, allow_session=True).kind == "session"
    assert extract(request(cookie=cookie), allow_query=True) is None  # sessions off
    explicit = extract(request(cookie=cookie, x_api_key="hk_live_x"), allow_query=True,
                       allow_session=True)
    assert explicit.kind == "key" and not explicit.ambient
    basic = "Basic " + base64.b64encode(b"u:hk_live_x").decode()
    assert extract(request(authorization=basic), allow_query=False).ambient
    assert not extract(request(authorization="Bearer x"), allow_query=False).ambient


def test_browser_held_credentials():
    session = extract(request(cookie=f"{SESSION_COOKIE}=v"), allow_query=False,
                      allow_session=True)
    assert browser_held(session, request())
    basic = extract(request(authorization="Basic dTpr"), allow_query=False)
    # MLflow's client and curl send Basic without any browser header: a program's own.
    assert not browser_held(basic, request(user_agent="python-requests/2.32"))
    for header in ({"origin": "http://x"}, {"referer": "http://x/"},
                   {"sec_fetch_site": "cross-site"}, {"user_agent": "Mozilla/5.0 (X11)"}):
        assert browser_held(basic, request(**header))
    bearer = extract(request(authorization="Bearer k"), allow_query=False)
    assert not browser_held(bearer, request(origin="http://evil"))


@pytest.mark.parametrize("origin,allowed", [
    ("http://127.0.0.1:5000", True), ("https://127.0.0.1:5000", True),
    ("http://127.0.0.1:5001", False), ("http://localhost:5000", False),
    ("http://127.0.0.1", False), ("null", False), ("", False), ("http://evil.com", False),
    ("http://127.0.0.1:5000.evil.com", False), ("http://u@127.0.0.1:5000", False),
    ("https://mlflow.example.com", True), ("https://mlflow.example.com:443", True),
    ("http://mlflow.example.com", False),
])
def test_same_origin(origin, allowed):
    same = SameOrigin(["https://mlflow.example.com"])
    assert same.allows(origin, request()) is allowed


def test_default_ports_compare_equal():
    same = SameOrigin()
    assert same.allows("https://host", RequestInfo("POST", "/", {"host": "host:443"}, "", None))
    assert same.allows("http://host:80", RequestInfo("POST", "/", {"host": "host"}, "", None))
    assert not same.allows("http://host", RequestInfo("POST", "/", {}, "", None))
    assert origin_of("http://host:80/path?q") == "http://host"


def test_cross_site_requests_are_refused():
    same = SameOrigin()
    same.check(request(origin="http://" + HOST))
    same.check(request(referer=f"http://{HOST}/#/models"))
    same.check(request("GET"))  # a navigation or same-origin read
    for bad in (request(), request(origin="http://127.0.0.1:9999"), request(origin="null"),
                request(referer="http://127.0.0.1:9999/page"),
                request("GET", origin="http://127.0.0.1:9999"),
                request(origin="http://127.0.0.1:9999", referer=f"http://{HOST}/")):
        with pytest.raises(CrossSiteRefused):
            same.check(bad)


def test_navigation_and_next():
    assert is_navigation(request("GET", accept="text/html,application/xhtml+xml"))
    assert is_navigation(request("GET", sec_fetch_mode="navigate", accept="*/*"))
    assert not is_navigation(request("GET", sec_fetch_mode="cors", accept="text/html"))
    assert not is_navigation(request("GET", accept="*/*"))
    assert not is_navigation(request("POST", accept="text/html"))
    for target in ("//evil.com", "/\\evil.com", "https://evil.com/", "javascript:alert(1)",
                   "evil.com", "/\r\nLocation: http://evil", "", None):
        assert safe_next(target) == "/"
    assert safe_next("/hokusai/models/m?x=1") == "/hokusai/models/m?x=1"
    assert login_location(request("GET", "/hokusai/keys", "a=1&b=/")) == \
        "/login?next=%2Fhokusai%2Fkeys%3Fa%3D1%26b%3D%2F"


@pytest.mark.parametrize("content_type,error", [
    ("text/plain", UnsupportedMediaType), ("application/x-www-form-urlencoded",
                                           UnsupportedMediaType),
    ("multipart/form-data; boundary=x", UnsupportedMediaType), (None, UnsupportedMediaType),
    ("application/json", None), ("application/json; charset=utf-8", None),
    ("application/merge-patch+json", None),
])
def test_json_routes_read_only_json(content_type, error):
    app = flask.Flask(__name__)
    headers = {"Content-Type": content_type} if content_type else {}
    with app.test_request_context("/", method="POST", data=b'{"name": "x"}', headers=headers):
        if error:
            with pytest.raises(error):
                json_object(allowed={"name"})
        else:
            assert json_object(allowed={"name"}) == {"name": "x"}
    with app.test_request_context("/", method="POST", data=b""):
        assert json_object(allowed={"name"}) == {}  # no body: nothing to misread


def test_benchmark_chart():
    from mlflow_hokusai.plugins.browser.chart import benchmark_chart

    svg = str(benchmark_chart([(1, 0.8, 0.0), (2, None, None), (3, 0.9, 0.1)], "<acc>"))
    assert svg.count('class="point"') == 2 and 'data-version="2"' not in svg
    assert "v3: 0.9 (+0.1)" in svg and "&lt;acc&gt;" in svg and "<acc>" not in svg
    assert 'class="point"' in str(benchmark_chart([(1, 5.0, None)], "m"))  # one point, flat
    assert "No version has a benchmark value" in str(benchmark_chart([(1, None, None)], "m"))


def test_contributors_are_ranked_by_summed_improvement():
    from mlflow_hokusai.plugins.browser.views import ranked_contributors

    rows = [{"version": 1, "contributor": "0xa", "improvement": 0.0, "verified": True},
            {"version": 2, "contributor": "0xb", "improvement": 0.06, "verified": True},
            {"version": 3, "contributor": "0xa", "improvement": -0.02, "verified": True},
            {"version": 4, "contributor": None, "improvement": 0.5, "verified": True},
            {"version": 5, "contributor": "0xc", "improvement": None, "verified": False},
            {"version": 6, "contributor": "0xd", "improvement": 0.9, "verified": False}]
    ranked = ranked_contributors(rows)
    assert [(c["address"], c["versions"]) for c in ranked] == \
        [("0xb", [2]), ("0xc", [5]), ("0xd", [6]), ("0xa", [1, 3])]
    assert ranked[2]["improvement"] == 0.0  # a typed, unverified value counts for nothing
    assert ranked[3]["improvement"] == pytest.approx(-0.02)


def test_the_drift_link_names_the_deployment_serving_the_model():
    import types

    from mlflow_hokusai.plugins.browser.views import drift_link

    def deployment(status, version=None, alias=None):
        target = f"@{alias}" if alias else str(version)
        return types.SimpleNamespace(status=status, alias=alias, target=target)

    base = "/api/v1/monitoring/churn%20v2/drift?format=html"
    assert drift_link("churn v2", []) == base  # the route's 404 explains
    # Deployed by version only: the default (@production) would be 404.
    assert drift_link("churn v2", [deployment("ready", 3)]) == base + "&version=3"
    assert drift_link("churn v2", [deployment("failed", alias="production"),
                                   deployment("ready", 3)]) == base + "&version=3"
    assert drift_link("churn v2", [deployment("ready", 3), deployment(
        "ready", alias="production")]) == base + "&version=%40production"


def test_times_on_pages():
    import datetime

    from mlflow_hokusai.plugins.browser.pages import when

    assert when("2026-11-27T15:52:28.746000+00:00") == "2026-11-27 15:52 UTC"
    assert when(datetime.datetime(2026, 11, 27, 16, 52, tzinfo=datetime.timezone(
        datetime.timedelta(hours=1)))) == "2026-11-27 15:52 UTC"
    assert when(None) == ""
