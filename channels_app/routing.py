from django.urls import path

from channels_app import consumers

# The agent page reads this path from its server-provided config (inbox/views/presenters.py).
AGENT_SOCKET_PATH = "ws/agent/"

websocket_urlpatterns = [
    path(AGENT_SOCKET_PATH, consumers.AgentConsumer.as_asgi()),
    path("ws/widget/<uuid:inbox_id>/", consumers.WidgetConsumer.as_asgi()),
]
