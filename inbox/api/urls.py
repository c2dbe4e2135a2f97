from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from inbox.api import analytics, campaigns, views
from inbox.api.errors import error_body


@csrf_exempt  # answers nothing but 404: a POST to an unknown path is a 404, not a CSRF 403
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Unknown API paths answer JSON like every other API error (not Django's HTML page)."""
    return JsonResponse(error_body("not_found", "No such API endpoint."), status=404)


v1 = [
    path("inboxes", views.InboxListView.as_view(), name="inbox-list"),
    path("inboxes/<str:inbox_id>", views.InboxDetailView.as_view(), name="inbox-detail"),
    path("messages", views.MessageListView.as_view(), name="message-list"),
    path(
        "messages/status/<str:customer_message_id>",
        views.MessageStatusLookupView.as_view(),
        name="message-status-lookup",
    ),
    path("messages/<str:message_id>", views.MessageDetailView.as_view(), name="message-detail"),
    path(
        "messages/<str:message_id>/events",
        views.MessageEventsView.as_view(),
        name="message-events",
    ),
    path(
        "messages/<str:message_id>/resend",
        views.MessageResendView.as_view(),
        name="message-resend",
    ),
    path(
        "messages/<str:message_id>/status",
        views.MessageStatusReportView.as_view(),
        name="message-status-report",
    ),
    path("conversations", views.ConversationListView.as_view(), name="conversation-list"),
    path(
        "conversations/<str:conversation_id>/messages",
        views.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path(
        "analytics/delivery",
        analytics.DeliveryAnalyticsView.as_view(),
        name="analytics-delivery",
    ),
    path("campaigns", campaigns.CampaignListView.as_view(), name="campaign-list"),
    path(
        "campaigns/<str:campaign_id>",
        campaigns.CampaignDetailView.as_view(),
        name="campaign-detail",
    ),
    *(
        path(
            f"campaigns/<str:campaign_id>/{action}",
            view.as_view(),
            name=f"campaign-{action}",
        )
        for action, view in campaigns.ACTIONS.items()
    ),
    path("webhooks", views.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<str:webhook_id>", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<str:webhook_id>/deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "<str:family>/messages",
        views.ChannelMessageListView.as_view(),
        name="channel-message-list",
    ),
    path(
        "<str:family>/messages/<str:message_id>",
        views.ChannelMessageDetailView.as_view(),
        name="channel-message-detail",
    ),
]

urlpatterns = [
    path("v1/", include(v1)),
    # The schema and its docs are public: they describe the API, they expose no data.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path(
        "docs/",
        # The split view serves its start-up script as a file: no inline script (CSP).
        SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[AllowAny]),
        name="docs",
    ),
    re_path(r"^(?P<path>.*)$", not_found),
]
