"""Domain errors of the inbox app; mapped to HTTP in one place (inbox/api/errors.py)."""


class InboxError(Exception):
    code = "error"
    message = "Something went wrong."
    http_status = 400

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        if message:
            self.message = message


class OutsideServiceWindow(InboxError):
    code = "outside_customer_service_window"
    message = (
        "The contact has not written in the last 24 hours, so this channel only allows an "
        "approved template. Send a template instead of free text."
    )
    http_status = 422


class NotResendable(InboxError):
    code = "not_resendable"
    http_status = 409

    def __init__(self, status: str):
        super().__init__(f"Only failed or expired messages can be resent (this one is {status}).")


class ResendWillNotHelp(InboxError):
    code = "resend_will_not_help"
    http_status = 422

    def __init__(self, error_code: str, hint: str = ""):
        super().__init__(
            f"Resending will not help: error {error_code} fails the same way again."
            + (f" {hint}" if hint else "")
        )


class WrongChannel(InboxError):
    code = "wrong_channel"
    http_status = 409


class ContactOptedOut(InboxError):
    """The contact opted out of this inbox's messages (DESIGN §14): nothing is queued."""

    code = "contact_opted_out"
    message = "The contact opted out of messages from this inbox."
    http_status = 422


class ContactOptedOutMarketing(InboxError):
    """The contact stopped marketing messages (WhatsApp 131050): a MARKETING template is
    refused, other messages still go."""

    code = "contact_opted_out_marketing"
    message = "The contact stopped marketing messages; send a utility template or free text."
    http_status = 422


class TemplateNotApproved(InboxError):
    code = "template_not_approved"
    http_status = 422


class TemplateParametersMismatch(InboxError):
    code = "template_parameters_mismatch"
    http_status = 422


class TemplatesUnavailable(InboxError):
    """The inbox cannot manage templates (another channel, or no WABA id in its config)."""

    code = "templates_unavailable"
    http_status = 409


class TemplateProviderError(InboxError):
    """The provider refused a template call: its own code and message, passed through."""

    code = "provider_error"
    http_status = 400

    def __init__(self, provider_code: str, provider_message: str, *, unreachable: bool = False):
        super().__init__(f"The provider refused: {provider_message} (code {provider_code}).")
        self.extra = {"provider_code": provider_code, "provider_message": provider_message}
        if unreachable:
            self.code, self.http_status = "provider_unreachable", 502
            self.message = provider_message


class CampaignStateConflict(InboxError):
    code = "campaign_state_conflict"
    http_status = 409

    def __init__(self, action: str, status: str):
        super().__init__(f"A {status} campaign cannot be {action}.")
