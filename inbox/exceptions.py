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


class CampaignStateConflict(InboxError):
    code = "campaign_state_conflict"
    http_status = 409

    def __init__(self, action: str, status: str):
        super().__init__(f"A {status} campaign cannot be {action}.")
