from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "cxm.ingest"
    label = "ingest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cxm.core import registry
        from cxm.ingest import privacy

        registry.register(privacy.STORE)
