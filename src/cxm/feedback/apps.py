from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "cxm.feedback"
    label = "feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cxm.core import registry
        from cxm.feedback import privacy, tasks
        from cxm.ingest import pipeline

        registry.register(privacy.STORE)
        pipeline.subscribe(tasks.on_events_stored)
