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
