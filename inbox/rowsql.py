"""INSERT statements for the few hot writes that cannot afford the ORM's query building on every
call (a new outgoing message costs a handful of statements: bench/README.md).

The column list is the model's own, read once, and each value is prepared by its field exactly
as ``Model.save()`` prepares it (defaults, ``auto_now_add``, JSON): a field added to the model
later is written here too, without touching this code.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, JSONField, Model


@cache
def _fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(model._meta.concrete_fields)


@cache
def _quoted(model: type[Model]) -> tuple[str, ...]:
    return tuple(connection.ops.quote_name(field.column) for field in _fields(model))


def columns(model: type[Model]) -> list[str]:
    """The model's column names, in the order ``insert_parts`` and ``from_row`` use."""
    return [field.column for field in _fields(model)]


Expression = str | tuple[str, list[Any]]


def insert_parts(
    instance: Model, *, expressions: dict[str, Expression] | None = None
) -> tuple[str, str, list[Any]]:
    """``(columns, values, params)`` of an INSERT of ``instance``.

    An auto-numbered primary key that is not set is left to the database. ``expressions`` maps a
    column to SQL (with its params, if any) used instead of the instance's value: an id from an
    earlier CTE, a value computed in the same statement.
    """
    expressions = expressions or {}
    db = connections[DEFAULT_DB_ALIAS]  # once: each ``connection.x`` is a thread-local lookup
    names, values, params = [], [], []
    for field, quoted in _written(type(instance), _numbered(instance)):
        names.append(quoted)
        if field.column in expressions:
            sql, sql_params = _expression(expressions[field.column])
            values.append(sql)
            params.extend(sql_params)
            continue
        values.append("%s")
        params.append(field.get_db_prep_save(field.pre_save(instance, True), db))
    return ", ".join(names), ", ".join(values), params


def _numbered(instance: Model) -> bool:
    """Whether the database numbers this row: its auto-numbered primary key is not set."""
    pk = instance._meta.pk
    return pk.db_returning and getattr(instance, pk.attname) is None


@cache
def _written(model: type[Model], numbered: bool) -> tuple[tuple[Field, str], ...]:
    """The fields an INSERT of ``model`` writes, with their quoted columns: every concrete one
    but the primary key when the database numbers the row."""
    return tuple(
        (field, quoted)
        for field, quoted in zip(_fields(model), _quoted(model), strict=True)
        if not (numbered and field.primary_key)
    )


def _expression(expression: Expression) -> tuple[str, list[Any]]:
    return (expression, []) if isinstance(expression, str) else expression


def insert(instance: Model, *, expressions: dict[str, Expression] | None = None) -> None:
    """``INSERT`` one row for ``instance`` (whose primary key is set), like ``save()`` would."""
    names, values, params = insert_parts(instance, expressions=expressions)
    table = connection.ops.quote_name(type(instance)._meta.db_table)
    with hot_cursor() as cursor:  # bound by the server: no quoting of every value in Python
        cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({values})", params)
    instance._state.adding = False
    instance._state.db = connection.alias


def insert_many(instances: list[Model]) -> list[Model]:
    """``bulk_create(instances)`` in one ``INSERT … SELECT … FROM unnest(…) RETURNING`` bound by
    the server (see ``hot_cursor``): the auto-numbered keys are set on the instances. For a hot
    path's batch of rows of one model (the ORM's statement building and client-side binding of
    every value cost more than the insert itself: bench/README.md). SQLite: ``bulk_create``.

    One array per column, so the statement's text is the same whatever the number of rows:
    psycopg parses it once (a ``VALUES`` list of 7 rows of 15 columns is 105 placeholders,
    past the 50 its query cache keeps, so it was re-parsed on every batch) and the server
    keeps it prepared. Each array is cast to its column's type without a length
    (``varchar[]``, not ``varchar(32)[]``: a cast would truncate where an insert refuses), as
    Django's own ``bulk_create`` does."""
    if not instances:
        return instances
    model = type(instances[0])
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_create(instances)
    numbered = _numbered(instances[0])
    if any(_numbered(instance) != numbered for instance in instances):
        raise ValueError("insert_many: give every row its primary key, or none of them")
    fields = [field for field, _ in _written(model, numbered)]
    db = connections[DEFAULT_DB_ALIAS]
    rows = [
        [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]
        for instance in instances
    ]
    columns = [list(column) for column in zip(*rows, strict=True)]
    with hot_cursor() as cursor:
        cursor.execute(_insert_many_sql(model, numbered), columns)
        keys = [row[0] for row in cursor.fetchall()]
    pk = model._meta.pk
    for instance, key in zip(instances, keys, strict=True):
        setattr(instance, pk.attname, key)
        instance._state.adding = False
        instance._state.db = connection.alias
    return instances


def insert_values(model: type[Model], rows: list[dict[str, Any]]) -> list[Any]:
    """``insert_many`` for rows given as values by field (attribute name: ``inbox_id``, not
    ``inbox``), without model instances: the new primary keys, in order. Every written field
    must be given; values go as the database takes them (JSON fields are adapted here, as
    ``get_db_prep_save`` would). For a hot path's batch: building a model instance and
    preparing its every field cost more than the insert (a batch of webhook deliveries: ~35 µs
    a row, in one process). SQLite: model instances and ``bulk_create``."""
    _checked_fields(model, rows)
    if not rows:
        return []
    if connection.vendor != "postgresql":
        return [instance.pk for instance in insert_many([model(**row) for row in rows])]
    statement, columns = insert_values_parts(model, rows)
    with hot_cursor() as cursor:
        cursor.execute(statement, columns)
        return [row[0] for row in cursor.fetchall()]


def insert_values_parts(model: type[Model], rows: list[dict[str, Any]]) -> tuple[str, list]:
    """``insert_values``' statement (``INSERT … RETURNING`` the keys) and its parameters, for
    a statement that holds it (PostgreSQL)."""
    db = connections[DEFAULT_DB_ALIAS]
    columns = []
    for field in _checked_fields(model, rows):
        column = [row[field.attname] for row in rows]
        if isinstance(field, JSONField):
            column = [field.get_db_prep_save(value, db) for value in column]
        columns.append(column)
    return _insert_many_sql(model, True), columns


def _checked_fields(model: type[Model], rows: list[dict[str, Any]]) -> list[Field]:
    if not model._meta.pk.db_returning:
        raise ValueError("insert_values: for models whose primary key the database numbers")
    fields = [field for field, _ in _written(model, True)]
    names = {field.attname for field in fields}
    for row in rows:
        if row.keys() != names:
            raise KeyError(f"insert_values: give exactly {sorted(names)}; got {sorted(row)}")
    return fields


@cache
def _insert_many_sql(model: type[Model], numbered: bool) -> str:
    """The ``unnest`` insert of ``model``'s rows, one array per written column."""
    written = _written(model, numbered)
    names = ", ".join(quoted for _, quoted in written)
    arrays = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field, _ in written)
    table = connection.ops.quote_name(model._meta.db_table)
    returning = connection.ops.quote_name(model._meta.pk.column)
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) RETURNING {returning}"


_KEPT = "_tickmark_hot_cursor"
_ONLY_WHEN_ASKED = 2**31 - 1


def hot_cursor() -> CursorWrapper:
    """A cursor for a hot path's fixed statements (PostgreSQL; a plain cursor elsewhere).

    Django's psycopg cursors bind parameters on the client: every value, and every element of
    an array, is quoted into the SQL text in Python (a profile of the webhook path put ~23 % of
    its thread there), and results are read as text, a timestamp parsed by a Python loader. This
    one lets the server bind the parameters, sends lists as binary arrays and reads results in
    binary (psycopg's C loaders), ~6x less Python for a 1,000-row array insert and ~5x less for
    reading 1,000 locked rows. It is Django's own cursor wrapper around it, so query logging,
    ``CaptureQueriesContext`` and ``execute_wrapper`` see these statements like any other.

    The psycopg cursor underneath is made once per connection and kept: making one and closing
    it cost ~20-25 µs of CPU per statement, a fifth of what a small statement costs in all (a
    webhook batch runs six). Closing the wrapper hands it back. While the kept one is still
    open (a hot statement inside another's ``with`` block) a fresh cursor is made instead.

    Each statement is prepared on its connection the first time it runs there and re-used
    after (``TICKMARK_PREPARED_STATEMENTS``, on by default): the server parses and plans a hot
    statement once per connection instead of on every call, and psycopg sends only its name
    and parameters. Django leaves prepared statements off for every query, for connection
    poolers; these are a few fixed texts (a statement whose text changes with its input, like
    a ``VALUES`` list per row, does not belong here), and PgBouncer keeps them from 1.21 on
    (``max_prepared_statements``). Turn it off behind a pooler that does not (docs/deploy.md).

    Parameters are ``%s`` as elsewhere; each is bound with its own type, so write the casts a
    statement needs (``%s::uuid[]``), and put the constants a partial index's predicate names
    in the text, not in parameters. Results come back as psycopg loads them: fine for uuid,
    text, numbers, booleans and ``timestamptz`` (aware, in the connection's time zone, UTC as
    Django sets it), not for ``json``/``jsonb`` columns (parsed, where Django expects text).
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    db = connections[DEFAULT_DB_ALIAS]  # once: each ``connection.x`` is a thread-local lookup
    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(_cursor_for(db))


def _cursor_for(db: BaseDatabaseWrapper) -> Any:
    raw = db.connection
    kept = getattr(db, _KEPT, None)
    if kept is not None and kept.in_use and kept.connection is raw:
        return _binary_cursor_class()(raw)
    if kept is None or kept.connection is not raw or kept.closed:
        if raw.prepare_threshold is None:
            # Django turns psycopg's preparing off (None); hot statements ask for it one by one
            # (``prepare=True``), which psycopg only honours with a threshold set. Set so high
            # that no other query is ever prepared automatically.
            raw.prepare_threshold = _ONLY_WHEN_ASKED
        kept = _binary_cursor_class()(raw, kept=True)
        setattr(db, _KEPT, kept)
    kept.in_use = True
    return kept


# At most this many hot statements' conversions are kept per process (there are a dozen).
_CONVERTED_MAX = 256
_converted: dict[tuple[str, str], tuple] = {}


@cache
def _hot_query_class() -> type:
    """psycopg's query conversion (``%s`` to ``$1``…, the parameters' order and formats),
    cached for every hot statement whatever its size.

    psycopg caches a statement's conversion only up to 4,096 bytes and 50 parameters (for ORM
    statements whose text changes with their input). A new message's one statement has ~70
    (``statuses.outbound_rows``): converted again on every call, ~97 µs each, it was 10 % of
    daphne's GIL samples while creating messages (py-spy; alternated pairs did not resolve the
    gain from this machine's noise: bench/README.md). Hot statements are a few fixed texts
    (``hot_cursor``), so each one's conversion is kept, up to ``_CONVERTED_MAX`` of them.
    """
    from psycopg import _queries  # psycopg's own converter (pinned in pyproject.toml)

    class HotQuery(_queries.PostgresQuery):
        def convert(self, query: Any, vars: Any) -> None:
            if vars is None or not isinstance(query, str):
                return super().convert(query, vars)
            encoding = self._tx.encoding
            converted = _converted.get((query, encoding))
            if converted is None:
                converted = _queries._query2pg_nocache(query.encode(encoding), encoding)
                if len(_converted) < _CONVERTED_MAX:
                    _converted[(query, encoding)] = converted
            self.query, self._want_formats, self._order, self._parts = converted
            self.dump(vars)
            return None

    return HotQuery


@cache
def _binary_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg.types.array import ListBinaryDumper

    class BinaryCursor(ServerBindingCursor):
        _query_cls = _hot_query_class()

        def __init__(self, *args: Any, kept: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Lists go as binary arrays, whatever the placeholder (``%s`` means "text or
            # binary" to psycopg, and picks text for lists).
            self.adapters.register_dumper(list, ListBinaryDumper)
            self.kept = kept  # made once for its connection (hot_cursor), never closed
            self.in_use = False

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs.setdefault("binary", True)
            if settings.TICKMARK_PREPARED_STATEMENTS:
                kwargs.setdefault("prepare", True)
            return super().execute(query, params, **kwargs)

        def _send_query_prepared(self, name: bytes, pgq: Any, **kwargs: Any) -> None:
            # psycopg keeps the statement of an unprepared execution for Django's query log
            # (``last_executed_query``: debug SQL, ``CaptureQueriesContext``), not of a
            # prepared one: keep it here too.
            self._query = pgq
            super()._send_query_prepared(name, pgq, **kwargs)

        def close(self) -> None:
            if self.kept:
                self.in_use = False  # its last results stay until its next statement
            else:
                super().close()

    return BinaryCursor


@cache
def _select_sql(model: type[Model], where: tuple[str, ...]) -> str:
    names = ", ".join(_quoted(model))
    table = connection.ops.quote_name(model._meta.db_table)
    condition = " AND ".join(where)
    # Identifiers from the model only; every value is a bound parameter.
    return f"SELECT {names} FROM {table} WHERE {condition} LIMIT 1"


def select_one(model: type[Model], **equal: Any) -> Model | None:
    """The row of ``model`` whose fields equal these values (a sequence: one of them), as the
    ORM's ``.filter(**equal).first()`` would load it, from a statement built once per shape.

    For keyed reads on a hot path (a message lookup is one indexed row, and building its query
    through the ORM cost more CPU than the database's answer: bench/README.md). Values are
    prepared by their fields as the ORM prepares them. PostgreSQL; elsewhere the ORM runs it.
    """
    if connection.vendor != "postgresql":
        lookups = {
            (f"{name}__in" if isinstance(value, list | tuple) else name): value
            for name, value in equal.items()
        }
        return model._default_manager.filter(**lookups).first()
    where, params = [], []
    for name, value in equal.items():
        field = model._meta.get_field(name)
        column = connection.ops.quote_name(field.column)
        if isinstance(value, list | tuple):
            where.append(f"{column} = ANY(%s)")
            params.append([field.get_db_prep_value(v, connection) for v in value])
        else:
            where.append(f"{column} = %s")
            params.append(field.get_db_prep_value(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(_select_sql(model, tuple(where)), params)
        row = cursor.fetchone()
    return None if row is None else from_row(model, row)


def from_row(model: type[Model], row: tuple | list) -> Model:
    """A model instance from a row with ``columns(model)``'s values, as the ORM would load it."""
    fields = _fields(model)
    values = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], values)
