from django.db import migrations

# Frozen copy: the migration must not follow later edits of models.DEFAULT_MENU.
MENU = [
    (1, "2ª via do boleto / PIX", "Boleto, linha digitável e PIX", "invoice"),
    (2, "Desbloqueio de confiança", "Libera sua internet por alguns dias", "trust_unlock"),
    (3, "Sem internet", "Verificar falhas e testar conexão", "no_internet"),
    (4, "Internet lenta", "Dicas e suporte técnico", "slow_internet"),
    (5, "Visita técnica", "Agendar um técnico", "technical_visit"),
    (6, "Planos / mudar de plano", "Conhecer ou trocar de plano", "plans"),
    (7, "Cancelamento", "Cancelar o serviço", "cancellation"),
    (8, "Falar com atendente", "Atendimento humano", "agent"),
]


def create(apps, schema_editor):
    BotSettings = apps.get_model("chatbot", "BotSettings")
    MenuOption = apps.get_model("chatbot", "MenuOption")
    BotSettings.objects.get_or_create(pk=1)
    if not MenuOption.objects.exists():
        MenuOption.objects.bulk_create(
            MenuOption(position=p, label=label, description=d, intent=i)
            for p, label, d, i in MENU
        )


class Migration(migrations.Migration):
    dependencies = [("chatbot", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
