from django.contrib import admin
from django.urls import include, path

from config.health import healthz

urlpatterns = [
    path("healthz", healthz),
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
