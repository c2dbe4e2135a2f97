from __future__ import annotations

from typing import Any

from django import forms


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
