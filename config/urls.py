from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config.health import bench_urls, healthz, healthz_worker, readyz
from inbox.forms import ThrottledAdminAuthenticationForm

# The admin's password form is throttled like the agents' (issue #10 item 6).
admin.site.login_form = ThrottledAdminAuthenticationForm


class FaviconRedirect(RedirectView):
    # Resolved per request: static() needs the manifest, which may not exist at import time.
    def get_redirect_url(self, *args: object, **kwargs: object) -> str:
        return static("favicon.svg")


urlpatterns = [
    *bench_urls(),
    path("healthz", healthz),
    path("healthz/worker", healthz_worker),
    # Browsers ask for /favicon.ico on every page (admin, API docs): answer with the real icon.
    path("favicon.ico", FaviconRedirect.as_view()),
    path("readyz", readyz),
    path("admin/", admin.site.urls),
    path("webhooks/", include("statuses.urls")),
    path("api/", include("inbox.api.urls")),
    path("", include("inbox.urls")),
]

# JSON under /api/ and /webhooks/, Django's pages elsewhere (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
