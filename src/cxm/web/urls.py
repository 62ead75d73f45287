from __future__ import annotations

from django.urls import path

from cxm.web import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
