"""daphne's HTTP requests without two pieces of Twisted's work that daphne never uses.

Before handing a request to the ASGI app, Twisted's ``Request.requestReceived`` parses the
``Content-Type`` of every POST through the ``email`` package's header registry, to fill
``request.args`` from an urlencoded or multipart body. daphne never reads ``request.args``: it
passes the raw body on, and Django parses forms itself. So that work is wasted on every POST —
~5 % of the web process's CPU for a webhook or a message send in a py-spy profile of daphne
(bench/README.md) — and a multipart upload was parsed twice, a malformed one refused by Twisted
with a bare 400 before Django could answer it. Twisted's ``Request`` takes
``parsePOSTFormSubmission=False`` for exactly this; daphne builds its requests from the module's
``WebRequest``, so that is where the flag is given.

Twisted's ``HTTPFactory`` also formats a combined-log line for every request and writes it to
Twisted's global log, which daphne sends nowhere at its default verbosity (and to the standard
library's logging at ``-v 2``, besides daphne's own access log): ~4 % of a webhook's CPU for a
line nobody reads. daphne's access log (``--access-log``, or stdout at ``-v 1``) is daphne's and
is unchanged.
"""

from __future__ import annotations

import sys


def skip_unused_twisted_work() -> None:
    """Make daphne's requests skip Twisted's form parsing and Twisted's own access line (when
    daphne is the server)."""
    module = sys.modules.get("daphne.http_protocol")
    if module is None or getattr(module.WebRequest, "skips_form_parsing", False):
        return
    module.HTTPFactory.log = _no_twisted_access_line
    base = module.WebRequest

    class WebRequest(base):
        skips_form_parsing = True

        def __init__(self, *args, **kwargs) -> None:
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(*args, **kwargs)

    module.WebRequest = WebRequest


def _no_twisted_access_line(self, request) -> None:
    """``HTTPFactory.log``: daphne writes its own access log (``Server.log_action``)."""
