"""daphne's HTTP requests without Twisted's form parsing.

Before handing a request to the ASGI app, Twisted's ``Request.requestReceived`` parses the
``Content-Type`` of every POST through the ``email`` package's header registry, to fill
``request.args`` from an urlencoded or multipart body. daphne never reads ``request.args``: it
passes the raw body on, and Django parses forms itself. So that work is wasted on every POST —
~5 % of the web process's CPU for a webhook or a message send in a py-spy profile of daphne
(bench/README.md) — and a multipart upload was parsed twice, a malformed one refused by Twisted
with a bare 400 before Django could answer it. Twisted's ``Request`` takes
``parsePOSTFormSubmission=False`` for exactly this; daphne builds its requests from the module's
``WebRequest``, so that is where the flag is given.
"""

from __future__ import annotations

import sys


def without_form_parsing() -> None:
    """Make daphne's requests skip Twisted's form parsing (when daphne is the server)."""
    module = sys.modules.get("daphne.http_protocol")
    if module is None or getattr(module.WebRequest, "skips_form_parsing", False):
        return
    base = module.WebRequest

    class WebRequest(base):
        skips_form_parsing = True

        def __init__(self, *args, **kwargs) -> None:
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(*args, **kwargs)

    module.WebRequest = WebRequest
