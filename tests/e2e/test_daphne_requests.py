"""What daphne itself does with a request before Tickmark sees it (config/daphne.py).

Twisted parsed the form of every POST (urlencoded or multipart) for ``request.args``, which
daphne never reads: wasted work on every webhook and send, and a multipart body it could not
parse was refused by Twisted with a bare 400 and a closed connection, never reaching Django.
"""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BROKEN_MULTIPART = b"not a multipart body at all"


def test_a_post_reaches_django_whatever_its_form_encoding(make_stack):
    stack = make_stack()
    stack.start_server()
    for content_type, body in [
        ("multipart/form-data; boundary=zz", BROKEN_MULTIPART),
        ("application/x-www-form-urlencoded", b"a=1&b=%zz"),
    ]:
        response = httpx.post(
            f"{stack.public_url}/api/v1/messages",
            content=body,
            headers={"Content-Type": content_type},
            timeout=10,
        )
        # The API's own answer: no key (before the fix, Twisted answered the multipart 400).
        assert response.status_code == 401, (content_type, response.text)
        assert response.json()["error"]["code"] == "not_authenticated"


def test_twisted_formats_no_access_line_of_its_own(make_stack):
    """At ``-v 2`` Twisted's log reaches the standard library's: only daphne's own access line
    is written for a request, not Twisted's combined-log line besides."""
    import sys
    from pathlib import Path

    from tests.e2e.conftest import wait_for

    stack = make_stack()
    daphne = Path(sys.executable).with_name("daphne")
    port = str(stack.server_port)
    process = stack.start(
        [str(daphne), "-v", "2", "-b", "127.0.0.1", "-p", port, "config.asgi:application"],
        LOG_LEVEL="INFO",  # where Twisted's line would show (logger daphne.server)
    )

    def answered():
        try:
            return httpx.get(f"{stack.public_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answered, timeout=90, message="daphne to answer")
    httpx.get(f"{stack.public_url}/healthz?probe=twisted-line", timeout=5)
    wait_for(lambda: "twisted-line" in process.log.read_text(), timeout=10)
    lines = [line for line in process.log.read_text().splitlines() if "twisted-line" in line]
    assert len(lines) == 1, lines  # daphne's: "GET /healthz?probe=twisted-line" 200
    assert "HTTP/1.1" not in lines[0]  # Twisted's combined line names the protocol
