from django.contrib import admin
from django.urls import include, path

from config.health import healthz, healthz_worker
from inbox.forms import ThrottledAdminAuthenticationForm

# The admin's password form is throttled like the agents' (issue #10 item 6).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("healthz", healthz),
    path("healthz/worker", healthz_worker),
    path("admin/", admin.site.urls),
    path("webhooks/", include("statuses.urls")),
    path("api/", include("inbox.api.urls")),
    path("", include("inbox.urls")),
]
