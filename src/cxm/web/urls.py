from __future__ import annotations

from django.urls import path

from cxm.web import audit_views, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("", views.customers, name="customers"),
    path("customers/", views.customers),
    path("customers/results/", views.customer_results, name="customer-results"),
    path("customers/<uuid:profile_id>/", views.customer, name="customer"),
    path("customers/<uuid:profile_id>/timeline/", views.customer_timeline,
         name="customer-timeline"),
    path("customers/<uuid:profile_id>/merges/<int:merge_id>/undo/", views.customer_unmerge,
         name="customer-unmerge"),
    path("customers/<uuid:profile_id>/consent/", views.customer_consent,
         name="customer-consent"),
    path("customers/<uuid:profile_id>/export/", views.customer_export, name="customer-export"),
    path("customers/<uuid:profile_id>/erase/", views.customer_erase, name="customer-erase"),
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("settings/keys/", views.api_keys, name="api-keys"),
    path("settings/keys/<str:prefix>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("settings/users/", views.users, name="users"),
    path("settings/users/<int:user_id>/role/", views.user_role, name="user-role"),
    path("settings/users/<int:user_id>/deactivate/", views.user_deactivate,
         name="user-deactivate"),
    path("settings/users/<int:user_id>/reactivate/", views.user_reactivate,
         name="user-reactivate"),
]
