from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class WhatsAppConfig(AppConfig):
    name = "whatsapp"
    verbose_name = "WhatsApp"

    def ready(self) -> None:
        from conversations import channels
        from whatsapp import metrics, services, signals  # noqa: F401 - services connects receivers
        from whatsapp.media import download_media
        from whatsapp.tasks import send_message

        # The core enqueues "deliver message N"; this app is who does it.
        channels.register_sender("whatsapp", send_message)
        # An erasure scrubs these tasks' stored runs; a send's sent_as is a
        # wamid, which encodes the phone number.
        channels.register_task_about(send_message, of="message", personal=["sent_as"])
        channels.register_task_about(download_media, of="message")
        # After 24 hours only approved templates may be sent: the console lists them.
        channels.register_templates("whatsapp", approved_templates)
        metrics.register()
        signals.connect()


def approved_templates(inbox: Any) -> list[dict[str, Any]]:
    """The approved templates of the WhatsApp number behind ``inbox``, in the
    shape ``conversations.channels.templates_for`` documents."""
    from whatsapp.models import MessageTemplate
    from whatsapp.templates import template_variables

    listed = []
    for template in MessageTemplate.objects.filter(
        account__inbox_id=inbox.pk, status__iexact="APPROVED"
    ).order_by("name", "language"):
        variables = template_variables(template)
        body = _component_text(template.components, "BODY")
        header_text = _component_text(template.components, "HEADER")
        header = variables["header"]
        named = any(
            not str(v).isdigit() for v in [*variables["body"]["variables"], *header["variables"]]
        )
        listed.append(
            {
                "id": template.pk,
                "name": template.name,
                "language": template.language,
                "category": template.category,
                "body": body,
                "variables": list(variables["body"]["variables"]),
                "params": len(variables["body"]["variables"]),
                # {{first_name}} rather than {{1}}: Meta wants each value sent
                # with its parameter_name (parameter_format NAMED).
                "named": named,
                "header": {
                    "format": header["format"] or "",
                    "text": header_text,
                    "variables": list(header["variables"]),
                },
                "buttons": [
                    {"index": b["index"], "type": b["type"], "variables": list(b["variables"])}
                    for b in variables["buttons"]
                ],
                # A location header needs coordinates, which no form asks for.
                "sendable": header["format"] in (None, "text", "image", "video", "document"),
            }
        )
    return listed


def _component_text(components: Any, kind: str) -> str:
    """The text of a template's ``kind`` component (BODY, HEADER), or ""."""
    return next(
        (
            str(c.get("text") or "")
            for c in components or []
            if isinstance(c, dict) and str(c.get("type", "")).upper() == kind
        ),
        "",
    )
