from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatbotConfig(AppConfig):
    name = "chatbot"
    verbose_name = _("Chatbot")

    def ready(self) -> None:
        from chatbot import config, csat
        from chatbot.tasks import handle_message
        from conversations import channels, panels

        # The core enqueues "handle inbound message N" for conversations in
        # state "bot"; this app is who does it.
        channels.register_bot(handle_message)
        # An erasure scrubs these tasks' stored runs (their errors can quote data).
        channels.register_task_about(handle_message, of="message")
        channels.register_task_about(csat.ask_rating, of="conversation")
        channels.register_task_about(csat.thank_for_rating, of="conversation")
        # The subscriber behind the contact (plan, contract, invoices, outages),
        # next to every conversation in the console.
        panels.register_panel(
            "subscriber", title=_("Subscriber"), url_name="panel-subscriber", order=10
        )
        config.connect()
        csat.connect()
