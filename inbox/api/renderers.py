from __future__ import annotations

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API for logged-in agents, without DRF's filter form.

    Our views filter in selectors (HackSoft style) rather than through ``filter_backends``;
    the filters are documented in Swagger UI at /api/docs/.
    """

    def get_filter_form(self, data, view, request):
        return None
