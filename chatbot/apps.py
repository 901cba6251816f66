from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatbotConfig(AppConfig):
    name = "chatbot"
    verbose_name = _("Chatbot")

    def ready(self) -> None:
        from chatbot import config, csat
        from chatbot.tasks import handle_message
        from conversations import channels

        # The core enqueues "handle inbound message N" for conversations in
        # state "bot"; this app is who does it.
        channels.register_bot(handle_message)
        config.connect()
        csat.connect()
