from django.apps import AppConfig


class IspSupportConfig(AppConfig):
    name = "ispsupport"
    verbose_name = "ISP Support"
