from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from inbox import ratelimit


class ComposeForm(forms.Form):
    """An agent's reply: free text, or a WhatsApp template (name + language)."""

    content = forms.CharField(required=False, max_length=4096, strip=True)
    template_name = forms.RegexField(
        required=False, max_length=512, regex=r"^[a-z0-9_]+$", strip=True
    )
    template_language = forms.RegexField(
        required=False, max_length=15, regex=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$", strip=True
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("template_name"):
            if not data.get("template_language"):
                self.add_error("template_language", "Give the template's language, e.g. en_US.")
        elif not data.get("content"):
            raise forms.ValidationError("Type a message first.")
        return data

    @property
    def template(self) -> dict[str, str] | None:
        name = self.cleaned_data.get("template_name")
        if not name:
            return None
        return {"name": name, "language": self.cleaned_data["template_language"]}


class WidgetStartForm(forms.Form):
    name = forms.CharField(required=False, max_length=200, strip=True)


class WidgetMessageForm(forms.Form):
    content = forms.CharField(max_length=4096, strip=True)


class LoginThrottleMixin(forms.Form):
    """Sign-in that refuses, for a while, a username or an address after repeated failures.

    Failures are counted per username — whether or not it exists, so the answer never tells —
    and per client address (``TICKMARK_LOGIN_USERNAME_RATE``, ``TICKMARK_LOGIN_ADDRESS_RATE``).
    While refused, the password is not even checked, so guessing on gains nothing.
    """

    request: HttpRequest
    refusal: ratelimit.Verdict | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not (username and password):
            return super().clean()  # a field is missing: nothing is tried, nothing counted
        limits = [
            (
                "login_username",
                username.casefold(),
                ratelimit.rate_setting("TICKMARK_LOGIN_USERNAME_RATE"),
            ),
            (
                "login_address",
                ratelimit.request_client(self.request),
                ratelimit.rate_setting("TICKMARK_LOGIN_ADDRESS_RATE"),
            ),
        ]
        refusal = ratelimit.first_refusal(ratelimit.peek(*limit) for limit in limits)
        if not refusal.allowed:
            self.refusal = refusal
            raise forms.ValidationError(
                refusal.message("Too many failed sign-in attempts."), code="throttled"
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            for limit in limits:
                ratelimit.hit(*limit)
            raise
        ratelimit.reset(*limits[0])  # the owner got in: their username's count starts over
        return cleaned


class ThrottledAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    """The agents' sign-in form (``/login/``)."""


class ThrottledAdminAuthenticationForm(LoginThrottleMixin, AdminAuthenticationForm):
    """The admin's sign-in form (``/admin/login/``): the same counts as ``/login/``."""
