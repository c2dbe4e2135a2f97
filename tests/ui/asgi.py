"""The production ASGI app plus static files, as the browser tests' daphne serves it."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from config.asgi import application as tickmark_application

application = ASGIStaticFilesHandler(tickmark_application)
