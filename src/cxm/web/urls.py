from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from cxm.web import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="cxm/login.html",
                                                redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.customers, name="customers"),
    path("customers/", views.customers),
    path("customers/results/", views.customer_results, name="customer-results"),
    path("customers/<uuid:profile_id>/", views.customer, name="customer"),
    path("customers/<uuid:profile_id>/timeline/", views.customer_timeline,
         name="customer-timeline"),
    path("customers/<uuid:profile_id>/merges/<int:merge_id>/undo/", views.customer_unmerge,
         name="customer-unmerge"),
    path("settings/keys/", views.api_keys, name="api-keys"),
    path("settings/keys/<str:prefix>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]
