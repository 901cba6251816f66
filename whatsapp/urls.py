from django.urls import path  # noqa: F401 - the helpers add their routes here

# Mounted under /api/v1/whatsapp/ (ispsupport/urls.py).
urlpatterns: list = [
    # webhook
    # status
    # media
]
