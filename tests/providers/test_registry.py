"""Registry conformance: every provider declares itself whole, and the specs, the channel
catalogue and the database agree (issue #11 item 4).

The error tables' wording (title, explanation and hint never blank) is walked by
``tests/webhooks/test_real_traffic.py::test_every_catalogue_entry_has_title_explanation_and_hint``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Mapping
from datetime import timedelta

import pytest
from django.db import connection

import statuses.providers
from inbox.models import SECRET_CONFIG_KEYS, Inbox
from statuses import providers
from statuses.catalogue import CHANNELS, ChannelType, Family
from statuses.ingestion import COMMON_KEPT_HEADERS
from statuses.providers import base
from statuses.providers.base import Channel, ConfigSchema, ErrorInfo, ProviderSpec
from statuses.sending import IDEMPOTENT_CHANNELS

SPECS = {spec.name: spec for spec in providers.SPECS}
CALLABLES = {
    "verify": base.Verify,
    "handshake": base.Handshake,
    "parse": base.Parse,
    "send": base.Send,
    "reconcile": base.Reconcile,
    "mark_read": base.MarkRead,
}
# The providers with a read receipt for businesses (DESIGN §14); the others have none.
MARKS_READ = {"whatsapp_cloud", "whatsapp_360dialog", "facebook", "instagram"}
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_HEADER = re.compile(r"[a-z0-9][a-z0-9-]*")
CREDENTIAL_WORDS = ("authorization", "cookie", "token", "secret", "password", "api-key")


def _parameters(function: object) -> list[str]:
    return [
        p.name
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        if p.name != "self"
    ]


def test_specs_have_unique_names_and_claim_disjoint_channel_types():
    assert len(SPECS) == len(providers.SPECS)
    claimed = [ct for spec in providers.SPECS for ct in spec.channel_types]
    assert len(claimed) == len(set(claimed))
    assert all(spec.channel_types for spec in providers.SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_field_is_declared_and_typed(name):
    spec = SPECS[name]
    assert isinstance(spec, ProviderSpec)
    for field in dataclasses.fields(ProviderSpec):
        assert hasattr(spec, field.name), field.name
    assert spec.channels and all(isinstance(c, Channel) for c in spec.channels)
    assert isinstance(spec.config, ConfigSchema)
    assert isinstance(spec.kept_headers, frozenset)
    assert isinstance(spec.idempotent_send, bool)
    assert isinstance(spec.webhook_retry_window, timedelta)
    assert spec.webhook_retry_window > timedelta(0)
    assert isinstance(spec.errors, Mapping)
    assert all(
        isinstance(code, str) and code and isinstance(info, ErrorInfo)
        for code, info in spec.errors.items()
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_function_takes_the_protocol_arguments(name):
    spec = SPECS[name]
    for field, protocol in CALLABLES.items():
        function = getattr(spec, field)
        if field in ("reconcile", "mark_read") and function is None:
            continue  # the provider offers no per-message lookup, or no read receipt
        assert callable(function), field
        assert len(_parameters(function)) == len(_parameters(protocol.__call__)), field


def test_read_receipts_are_declared_by_exactly_the_providers_that_have_them():
    assert {name for name, spec in SPECS.items() if spec.mark_read is not None} == MARKS_READ


@pytest.mark.parametrize("name", sorted(SPECS))
def test_config_schema_is_consistent(name):
    config = SPECS[name].config
    required, optional = set(config.required), set(config.optional)
    assert len(config.keys) == len(set(config.keys)), "a key listed twice"
    assert not required & optional
    assert all(_KEY.fullmatch(key) for key in config.keys)
    assert config.secret <= set(config.keys), "a secret the inbox cannot hold"
    for group in config.one_of:
        assert len(group) > 1 and set(group) <= optional


@pytest.mark.parametrize("name", sorted(SPECS))
def test_kept_headers_are_lowercase_and_never_credentials(name):
    spec = SPECS[name]
    for header in spec.kept_headers:
        assert _HEADER.fullmatch(header), header
        assert not any(word in header for word in CREDENTIAL_WORDS), header
    assert all(_HEADER.fullmatch(header) for header in COMMON_KEPT_HEADERS)


def test_registry_catalogue_and_model_choices_name_the_same_channel_types():
    assert set(providers.REGISTRY) == set(CHANNELS) == set(ChannelType.values)


def test_catalogue_is_built_from_the_specs():
    for channel_type, spec in providers.REGISTRY.items():
        (declared,) = [c for c in spec.channels if c.channel_type == channel_type]
        assert CHANNELS[channel_type] is declared
        assert declared.family in Family.values
        assert declared.how.strip()
        assert declared.time_to_live > timedelta(0)


def _model_constraint_values() -> set[str]:
    (constraint,) = [c for c in Inbox._meta.constraints if c.name == "inbox_channel_type_valid"]
    ((lookup, values),) = constraint.condition.children
    assert lookup == "channel_type__in"
    return set(values)


def test_model_check_constraint_allows_exactly_the_registered_channel_types():
    assert _model_constraint_values() == set(providers.REGISTRY)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads pg_constraint")
def test_database_check_constraint_allows_exactly_the_registered_channel_types():
    """The migrated database, not only the model: a provider added without its migration (or
    a migration without its provider) fails here."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
            ["inbox_channel_type_valid"],
        )
        (definition,) = cursor.fetchone()
    assert set(re.findall(r"'([a-z0-9_]+)'", definition)) == set(providers.REGISTRY)


def test_every_provider_module_is_registered():
    """A package or module under ``statuses/providers/`` with a SPEC is in ``SPECS``: one
    registry line is what makes a provider reachable."""
    found = []
    for info in pkgutil.iter_modules(statuses.providers.__path__):
        module = importlib.import_module(f"statuses.providers.{info.name}")
        spec = getattr(module, "SPEC", None)
        if spec is not None:
            found.append(spec)
    assert sorted(s.name for s in found) == sorted(SPECS)
    assert all(spec in providers.SPECS for spec in found)


def test_derived_values_read_the_specs():
    secrets = set().union(*(spec.config.secret for spec in providers.SPECS))
    assert secrets == SECRET_CONFIG_KEYS
    assert {
        ct for spec in providers.SPECS if spec.idempotent_send for ct in spec.channel_types
    } == IDEMPOTENT_CHANNELS
    assert {ct for ct, spec in providers.REGISTRY.items() if spec.reconcile} == {
        "twilio_sms",
        "twilio_whatsapp",
    }
    assert providers.kept_headers("line") == {"x-line-signature"}
    assert providers.kept_headers("no_such_channel") == frozenset()


def test_channels_reported_elsewhere_refuse_the_webhook_url_with_the_shared_helpers():
    """The integrator API and the widget report statuses their own way: their webhook URL
    refuses everything, with nothing to answer, parse or keep."""
    refusing = [spec for spec in providers.SPECS if spec.verify is base.refuse_webhook]
    assert sorted(spec.name for spec in refusing) == ["api", "web_widget"]
    for spec in refusing:
        assert spec.handshake is base.no_handshake
        assert spec.parse is base.parse_nothing
        assert spec.kept_headers == frozenset()
