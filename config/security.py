"""Content-Security-Policy header (issue #10 item 9).

Tickmark's pages load scripts and styles only from their own origin (no inline scripts: data
goes in ``json_script`` blocks, which are ``application/json`` and never run), connect back to
their own origin (HTTP and WebSocket), and may not be framed — except the chat widget page,
which ``embed.js`` frames on the customer's own site (its view is ``xframe_options_exempt``).
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"


def policy(request: HttpRequest, frameable: bool) -> str:
    try:
        host = request.get_host()
    except DisallowedHost:
        sockets = ""  # answering a bad Host: 'self' is enough for an error page
    else:
        sockets = f" wss://{host}" if request.is_secure() else f" ws://{host} wss://{host}"
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        # Inline style blocks/attributes only (the admin and the API docs use a few); no script.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        f"connect-src 'self'{sockets}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors *" if frameable else "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if HEADER not in response:
            frameable = bool(getattr(response, "xframe_options_exempt", False))
            response[HEADER] = policy(request, frameable)
        return response
