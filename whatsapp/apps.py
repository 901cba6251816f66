from django.apps import AppConfig


class WhatsAppConfig(AppConfig):
    name = "whatsapp"
    verbose_name = "WhatsApp"

    def ready(self) -> None:
        from conversations import channels
        from whatsapp import metrics, services, signals  # noqa: F401 - services connects receivers
        from whatsapp.tasks import send_message

        # The core enqueues "deliver message N"; this app is who does it.
        channels.register_sender("whatsapp", send_message)
        metrics.register()
        signals.connect()
