from django.urls import path

from whatsapp import media, status, webhook

# Mounted under /api/v1/whatsapp/ (ispsupport/urls.py).
urlpatterns: list = [
    # webhook: Meta's dashboard may be given either form; a redirect would lose the POST.
    path("webhook", webhook.WebhookView.as_view(), name="whatsapp-webhook"),
    path("webhook/", webhook.WebhookView.as_view(), name="whatsapp-webhook-slash"),
    # status
    path("status", status.StatusView.as_view(), name="whatsapp-status"),
    # media
    path("media/<int:message_id>", media.MediaView.as_view(), name="whatsapp-media"),
]
