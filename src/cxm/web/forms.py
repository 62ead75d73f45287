"""Forms of the web UI. They validate shape only; the rules live in the ``actions`` modules."""

from __future__ import annotations

from django import forms

from cxm.accounts.actions import CHANNELS
from cxm.accounts.models import Role, Scope
from cxm.ingest.spec import CHANNELS as EVENT_CHANNELS


class SearchForm(forms.Form):
    q = forms.CharField(max_length=300, required=False, strip=True)


class TimelineForm(forms.Form):
    channel = forms.ChoiceField(
        required=False, choices=[("", "All channels"), *((c, c) for c in EVENT_CHANNELS)],
    )
    cursor = forms.CharField(max_length=200, required=False)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, strip=True,
        widget=forms.TextInput(attrs={"placeholder": "e.g. website tracking",
                                      "autocomplete": "off"}),
    )
    scope = forms.ChoiceField(choices=Scope.choices, initial=Scope.INGEST)
    default_channel = forms.ChoiceField(
        required=False, label="Default channel",
        choices=[("", "— none —"), *((c, c) for c in CHANNELS)],
        help_text="Channel given to events sent with this key when they name none.",
    )


class NewUserForm(forms.Form):
    username = forms.CharField(
        max_length=150, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none",
                                      "spellcheck": "false"}),
    )
    password = forms.CharField(
        strip=False, help_text="8+ characters; not common, not all digits, not like the username.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password",
                                          "aria-describedby": "password-help"}),
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
