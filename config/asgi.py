import gc
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

sys.setswitchinterval(settings.SWITCH_INTERVAL_MS / 1000)  # config/settings.py says why

from config.daphne import skip_unused_twisted_work  # noqa: E402
from config.handler import SyncChainASGIHandler  # noqa: E402

skip_unused_twisted_work()  # form parsing and an access line daphne never uses (config.daphne)

# get_asgi_application(), with the middleware chain run in one hop (config.handler).
django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from channels_app.routing import websocket_urlpatterns  # noqa: E402
from config.health import with_bench_noop  # noqa: E402
from statuses.asgi import with_webhooks  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Provider webhooks skip Django's middleware and handler (statuses.asgi).
        "http": with_bench_noop(with_webhooks(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything loaded so far (Django, the apps, the URL and middleware machinery) lives as long as
# the process: move it out of the collector's reach. Full collections then walk only what
# requests allocate, and stop adding tens of milliseconds to one request in a hundred (measured:
# a message lookup's p99 at one connection went from 45-55 ms to under 6 ms; bench/README.md).
gc.freeze()
