from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from inbox import ratelimit
from inbox.models import Inbox
from inbox.views.presenters import address_problem, max_length


class ComposeForm(forms.Form):
    """An agent's reply: free text, or a WhatsApp template (name + language)."""

    content = forms.CharField(required=False, strip=True)
    template_name = forms.RegexField(
        required=False, max_length=512, regex=r"^[a-z0-9_]+$", strip=True
    )
    template_language = forms.RegexField(
        required=False, max_length=15, regex=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$", strip=True
    )

    def __init__(self, *args: Any, max_length: int = 4096, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_length = max_length

    def clean_content(self) -> str:
        content = self.cleaned_data.get("content", "")
        if len(content) > self.max_length:
            # One clear message (not Django's "Ensure this value…" plus "Type a message first").
            raise forms.ValidationError(
                f"Too long: {len(content):,} characters; this channel allows "
                f"{self.max_length:,}. Shorten it or split it into several messages."
            )
        return content

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("template_name"):
            if not data.get("template_language"):
                self.add_error("template_language", "Give the template's language, e.g. en_US.")
        elif not data.get("content") and "content" not in self.errors:
            raise forms.ValidationError("Type a message first.")
        return data

    @property
    def template(self) -> dict[str, Any] | None:
        name = self.cleaned_data.get("template_name")
        if not name:
            return None
        template: dict[str, Any] = {
            "name": name,
            "language": self.cleaned_data["template_language"],
        }
        # The picker's fields, one per placeholder, in order (checked against the template).
        parameters = {
            part: self.data.getlist(f"template_{part}")
            for part in ("header", "body")
            if hasattr(self.data, "getlist") and self.data.getlist(f"template_{part}")
        }
        if parameters:
            template["parameters"] = parameters
        return template


class StartConversationForm(ComposeForm):
    """A new conversation from the agent UI: the inbox, the contact's address, a first message."""

    inbox = forms.ModelChoiceField(queryset=None, empty_label=None)
    to = forms.CharField(max_length=320, strip=True)

    field_order = ["inbox", "to", "content", "template_name", "template_language"]

    def __init__(self, *args: Any, account: Any, **kwargs: Any) -> None:

        super().__init__(*args, **kwargs)
        # Only the agent's own account's inboxes: another account's id is "not a valid choice".
        self.fields["inbox"].queryset = Inbox.objects.filter(account=account)

    def clean(self) -> dict[str, Any]:

        inbox = self.cleaned_data.get("inbox")
        if inbox is not None:
            self.max_length = max_length(inbox)
            if "content" in self.cleaned_data:
                try:
                    self.cleaned_data["content"] = self.clean_content()
                except forms.ValidationError as exc:
                    self.add_error("content", exc)
            problem = address_problem(inbox, self.cleaned_data.get("to", ""))
            if problem:
                self.add_error("to", problem)
        return super().clean()


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
