from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "cxm.identity"
    label = "identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cxm.core import registry
        from cxm.identity import actions, privacy
        from cxm.ingest import pipeline

        registry.register(privacy.STORE)
        pipeline.register_resolver(actions.resolve_messages, actions.lock_identifiers)
