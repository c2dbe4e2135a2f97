from django.contrib.auth import views as auth_views
from django.urls import path

from inbox.views import agent, analytics, campaigns, login, widget

app_name = "inbox"

urlpatterns = [
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", agent.inbox_home, name="home"),
    path("conversations/list/", agent.conversation_list_fragment, name="conversation-list"),
    path("conversations/start/", agent.conversation_start, name="start"),
    path("conversations/<int:pk>/", agent.conversation_detail, name="conversation"),
    path(
        "conversations/<int:pk>/messages.json",
        agent.conversation_messages_json,
        name="conversation-messages",
    ),
    path(
        "conversations/<int:pk>/bubbles/",
        agent.conversation_bubbles_fragment,
        name="conversation-bubbles",
    ),
    path("conversations/<int:pk>/send/", agent.message_send, name="send"),
    path("conversations/<int:pk>/read/", agent.conversation_mark_read, name="mark-read"),
    path("messages/<uuid:message_id>/events.json", agent.message_events_json, name="events"),
    path("messages/<uuid:message_id>/resend/", agent.message_resend, name="resend"),
    path("widget-demo/", agent.widget_demo, name="widget-demo"),
    path("analytics/", analytics.analytics_page, name="analytics"),
    path("analytics/panel/", analytics.analytics_panel, name="analytics-panel"),
    path("analytics/failed/", analytics.failed_messages, name="analytics-failed"),
    path("analytics/failed/resend/", analytics.failed_messages_resend, name="analytics-resend"),
    path("campaigns/", campaigns.campaigns_page, name="campaigns"),
    path("campaigns/panel/", campaigns.campaigns_panel, name="campaigns-panel"),
    path("campaigns/new/", campaigns.campaign_create, name="campaign-create"),
    path("campaigns/<uuid:pk>/", campaigns.campaign_page, name="campaign"),
    path("campaigns/<uuid:pk>/panel/", campaigns.campaign_panel, name="campaign-panel"),
    path("campaigns/<uuid:pk>/<str:action>/", campaigns.campaign_action, name="campaign-action"),
    path("widget/<uuid:inbox_id>/", widget.widget_page, name="widget"),
    path("widget/<uuid:inbox_id>/start/", widget.widget_start, name="widget-start"),
    path("widget/<uuid:inbox_id>/messages/", widget.widget_messages, name="widget-messages"),
]
