"""Payload builders authored from the reference (§1, §4, §5); ids and numbers are invented."""

from __future__ import annotations

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
WAMID = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
PAGE_ID = "101234567890123"
PSID = "6412345678901234"
IG_ID = "17841400000000001"
IGSID = "1092310252982105"


def wa_status(
    wamid: str = WAMID, status: str = "delivered", timestamp: str = "1767225600", **extra
) -> dict:
    return {
        "id": wamid,
        "status": status,
        "timestamp": timestamp,
        "recipient_id": "16505076520",
        **extra,
    }


def wa_value(statuses=(), messages=(), contacts=(), errors=None) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    if statuses:
        value["statuses"] = list(statuses)
    if messages:
        value["messages"] = list(messages)
    if contacts:
        value["contacts"] = list(contacts)
    if errors is not None:
        value["errors"] = errors
    return value


def wa_payload(*values: dict, entries: list[list[dict]] | None = None) -> dict:
    """One entry with one change per value, or ``entries`` = a list of value lists."""
    groups = entries if entries is not None else [list(values)]
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [{"field": "messages", "value": value} for value in group],
            }
            for group in groups
        ],
    }


def wa_text_message(wamid: str = "wamid.IN1", body: str = "Hi!", sender: str = "16505076520"):
    return {
        "from": sender,
        "id": wamid,
        "timestamp": "1767225500",
        "type": "text",
        "text": {"body": body},
    }


def messaging_payload(*events: dict, obj: str = "page", owner: str = PAGE_ID) -> dict:
    return {
        "object": obj,
        "entry": [{"id": owner, "time": 1767225600123, "messaging": list(events)}],
    }


def fb_delivery(watermark: int = 1767225600253, mids: list[str] | None = None) -> dict:
    delivery: dict = {"watermark": watermark}
    if mids is not None:
        delivery["mids"] = mids
    return {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "delivery": delivery}


def fb_read(watermark: int = 1767225600253, timestamp: int = 1767225700463) -> dict:
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": timestamp,
        "read": {"watermark": watermark},
    }


def fb_message(mid: str = "m_in1", text: str = "Hello", echo: bool = False) -> dict:
    message: dict = {"mid": mid, "text": text}
    sender, recipient = PSID, PAGE_ID
    if echo:
        message["is_echo"] = True
        sender, recipient = PAGE_ID, PSID
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": 1767225650000,
        "message": message,
    }


def ig_seen(mid: str = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw") -> dict:
    return {
        "sender": {"id": IGSID},
        "recipient": {"id": IG_ID},
        "timestamp": 1767225799340,
        "read": {"mid": mid},
    }
