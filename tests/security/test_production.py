"""The production profile (issue #10 items 8 and 9): static files served by the app with
DEBUG=0 (hashed, compressed), `check --deploy` clean, a Content-Security-Policy, no
ALLOWED_HOSTS='*' by accident, and a readiness probe."""

import asyncio
import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.templatetags.static import static
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DEBUG": "0",
    "PUBLIC_BASE_URL": "https://tickmark.example.com",
    "ALLOWED_HOSTS": "tickmark.example.com",
    "TICKMARK_BEHIND_TLS_PROXY": "1",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEBUG", "ALLOWED_HOSTS", "PUBLIC_BASE_URL", "SECRET_KEY"))
        and k != "DJANGO_ALLOW_ASYNC_UNSAFE"  # set by the browser tests; never in deployment
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- check --deploy -----------------------------------------------------------------------------


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_would_warn_without_the_https_settings():
    """The clean result above comes from the settings, not from a check that cannot fail."""
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **{**PRODUCTION_ENV, "PUBLIC_BASE_URL": "http://tickmark.example.com"},
    )
    assert result.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in result.stderr + result.stdout


def test_allowed_hosts_star_is_refused_with_debug_off_unless_forced():
    refused = manage("check", **{**PRODUCTION_ENV, "ALLOWED_HOSTS": "*"})
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "ALLOWED_HOSTS" in refused.stderr

    forced = manage(
        "check", **{**PRODUCTION_ENV, "ALLOWED_HOSTS": "*", "TICKMARK_ALLOW_ANY_HOST": "1"}
    )
    assert forced.returncode == 0, forced.stderr


# --- HTTPS behaviour under production settings --------------------------------------------------


@pytest.fixture
def https_settings(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["tickmark.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


@pytest.mark.django_db
def test_plain_http_is_redirected_and_https_gets_hsts(https_settings):
    client = Client(HTTP_HOST="tickmark.example.com")
    redirected = client.get("/login/")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://tickmark.example.com/login/"

    secure = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")
    assert secure.cookies["csrftoken"]["secure"]

    # Probes from a local load balancer are not redirected.
    assert client.get("/healthz").status_code == 200


# --- Content-Security-Policy --------------------------------------------------------------------


def csp(response) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1]
        for part in response["Content-Security-Policy"].split(";")
    }


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_scripts(client):
    policy = csp(client.get("/login/"))
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in policy["script-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "ws://testserver" in policy["connect-src"]


@pytest.mark.django_db
def test_the_widget_page_may_be_framed_by_customer_sites(client, account, make_inbox):
    widget = make_inbox(account, "web_widget")
    response = client.get(f"/widget/{widget.id}/")
    assert response.status_code == 200
    assert csp(response)["frame-ancestors"] == "*"
    assert "X-Frame-Options" not in response


def test_templates_have_no_inline_scripts_or_handlers():
    """What the policy relies on: every <script> has a src or is JSON data (json_script)."""
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


# --- static files with DEBUG=0 ------------------------------------------------------------------


def asgi_get(path: str, **headers: str) -> httpx.Response:
    """GET through Django's ASGI application (as daphne runs it), on a loop of its own thread
    (the browser tests leave a loop running in this one)."""
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()  # a fresh handler: middleware built with the current settings

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get(path, headers=headers)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, get()).result(timeout=30)


@pytest.mark.parametrize("name", ["inbox/main.js", "widget/widget.js", "widget/embed.js"])
def test_static_files_are_served_with_debug_off_before_collectstatic(settings, name):
    settings.DEBUG = False
    response = asgi_get(static(name))
    assert response.status_code == 200
    assert response.content == (ROOT / "static" / name).read_bytes()


def test_collected_static_files_are_hashed_compressed_and_cached(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    url = static("inbox/config.js")
    assert re.fullmatch(r"/static/inbox/config\.[0-9a-f]{12}\.js", url), url

    response = asgi_get(url, **{"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    assert response.content == (ROOT / "static" / "inbox" / "config.js").read_bytes()

    # The page's modules import each other by their hashed names: a release never mixes a new
    # main.js with a cached old module.
    main = asgi_get(static("inbox/main.js")).content.decode()
    imports = re.findall(r'from "\./([^"]+)"', main)
    assert imports, main[:300]
    assert all(re.fullmatch(r"[a-z]+\.[0-9a-f]{12}\.js", name) for name in imports), imports


# --- readiness ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_answers_json_with_the_database_state(client, monkeypatch):
    ok = client.get("/readyz")
    assert (ok.status_code, ok.json()) == (200, {"status": "ok", "database": "ok"})

    from django.db.backends.utils import CursorWrapper

    def down(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", down)
    unavailable = client.get("/readyz")
    assert unavailable.status_code == 503
    assert unavailable.json()["database"] == "unreachable"
    assert unavailable["Retry-After"] == "5"


@pytest.mark.django_db
def test_the_api_docs_page_runs_no_inline_script(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    tags = re.findall(r"<script\b[^>]*>", page.content.decode())
    assert tags and all("src=" in tag for tag in tags), tags
    script_url = re.search(r'<script src="([^"]*\?script=[^"]*)"', page.content.decode())
    assert script_url, page.content
    script = client.get(script_url.group(1).replace("&amp;", "&"))
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
