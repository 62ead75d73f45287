"""Routes for people who are not users of cxm: survey respondents and the embeddable widget.

Each view is ``@public`` (no session needed): the personal survey page is opened with its
signed token, the widget's endpoints check a write key or an invitation token themselves.
"""

from __future__ import annotations

from django.urls import path

from cxm.web import public_survey_views, widget

urlpatterns = [
    path("s/<str:token>/", public_survey_views.survey_page, name="survey-page"),
    path("s/<str:token>/opt-out/", public_survey_views.opt_out_page, name="survey-opt-out"),
    path("widget.js", widget.widget_script, name="survey-widget-script"),
    path("w/v1/surveys/<str:slug>/ask", widget.ask, name="survey-widget-ask"),
    path("w/v1/responses", widget.respond, name="survey-widget-respond"),
]
