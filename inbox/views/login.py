"""The agents' sign-in page, throttled against password guessing (see the form)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from inbox.forms import ThrottledAuthenticationForm


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.refusal is not None:
            # The same page with the reason on it, and a status a script can tell apart.
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.retry_after)
        return response
