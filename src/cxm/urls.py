from __future__ import annotations

from django.urls import include, path

from cxm.api import api
from cxm.ingest import http as ingest_http

# Segment's endpoints, plus analytics.js's short forms (/v1/t, /v1/i, …).
_INGEST = [
    ("track", ingest_http.track, "t"), ("identify", ingest_http.identify, "i"),
    ("page", ingest_http.page, "p"), ("screen", ingest_http.screen, "s"),
    ("group", ingest_http.group, "g"), ("alias", ingest_http.alias, "a"),
    ("batch", ingest_http.batch, "b"), ("import", ingest_http.batch, "m"),
]

urlpatterns = [
    *[path(f"v1/{name}", view, name=f"ingest-{name}") for name, view, _ in _INGEST],
    *[path(f"v1/{short}", view) for _, view, short in _INGEST],
    path("api/v1/", api.urls),
    path("", include("cxm.web.public_urls")),
    path("", include("cxm.web.urls")),
]
