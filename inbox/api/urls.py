from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from inbox.api import views

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
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
