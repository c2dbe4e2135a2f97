from django.urls import path

from statuses import views

urlpatterns = [
    path("<str:channel_type>/<uuid:inbox_id>/", views.provider_webhook, name="provider-webhook"),
]
