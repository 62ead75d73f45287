from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "cxm.web"
    label = "web"
