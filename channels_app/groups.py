"""Channel-layer group names, in one place."""


def account(account_id: int) -> str:
    return f"account.{account_id}"


def widget_contact(contact_id: int) -> str:
    return f"widget.{contact_id}"
