"""WSGI entry point, for tools that want one; production serves ASGI with daphne."""

from ispsupport import boot

boot.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
