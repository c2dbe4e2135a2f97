from django.contrib import admin
from django.urls import include, path

from config.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("admin/", admin.site.urls),
    path("webhooks/", include("statuses.urls")),
    path("api/", include("inbox.api.urls")),
    path("", include("inbox.urls")),
]
