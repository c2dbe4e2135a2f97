from django.contrib import admin
from django.urls import include, path

from config.health import bench_urls, healthz

urlpatterns = [
    *bench_urls(),
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("webhooks/", include("statuses.urls")),
    path("api/", include("inbox.api.urls")),
    path("", include("inbox.urls")),
]
