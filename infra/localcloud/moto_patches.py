"""Emulator fixes that keep moto's semantics but make it usable at pipeline scale.

moto's DynamoDB ``transact_write_items`` deep-copies every table it touches once per transaction
item (up to 100) so it can roll back: with a few thousand aggregate rows a 100-item counter
transaction costs seconds, and the local pipeline spends most of its time copying tables.
Here only the items the transaction touches are snapshotted, and restored in place (without
stream records) when it is cancelled, which is what DynamoDB does: all or nothing.

moto's ``Query`` on a table (not an index) sorts every item of the table to pick one
partition; thousands of per-customer queries on a growing table become quadratic. Here a
base-table query reads only its partition, as DynamoDB does. Results are identical.

moto serializes a DynamoDB Streams ``GetRecords`` response through its generic, shape-walking
serializer: every attribute of every stream image is looked up by alias, which made it a quarter
of the emulator's CPU while AlertsFunction read the tickets stream. The records are already in
the wire shape, so here they are written with ``json.dumps`` (timestamp and binaries encoded
as the serializer does; a test compares both responses).

moto builds an item attribute by attribute, and each insert re-measures every attribute already
in it (the 400 KB item limit): quadratic in attributes, a tenth of the emulator's CPU for
tickets of ~40 attributes. Here the same running total is kept as the item is built, so the
same item raises the same ItemSizeTooLarge at the same attribute.

moto's PartiQL runs every statement over a JSON copy of every item of every table (seconds per
statement at 50,000 tickets) and its INSERT overwrites an item that exists, where DynamoDB answers
DuplicateItem — the very answer Enrich's ticket writes rely on. Here a ``BatchExecuteStatement`` of
plain ``INSERT INTO "t" VALUE {'a': ?, ...}`` statements is answered as DynamoDB does: each one a
PutItem through moto's own handler with the condition "no item has this key" (moto's checks, size
limit and stream record), DuplicateItem when it fails. Any other statement goes to moto as before.

moto parses a condition expression from its text on every use, up to three times per Put of a
transaction (request validation, the transaction's check, the put itself): ~15 % of the
emulator's CPU when Enrich writes 500 conditional ticket puts a chunk, all with one expression.
Here a parse is memoised by (expression, names, values) (the parsed tree holds the values and
nothing mutates it), and an UpdateExpression's AST by its text (moto's validator
deep-copies the AST before touching it). Errors are never cached: a bad expression raises as before.

moto validates an UpdateExpression with ten tree walks over a deep copy of its AST: the chunk's
counter transaction (≈ 200 aggregate rows of `ADD #c0 :v0, #c1 :v1, ...`) spent ~75 % of the
emulator's time there. An update that is nothing but `ADD #name :value` pairs of numbers or
non-empty sets to distinct non-key attributes, with no condition, is applied here directly with moto's own number
addition (`DynamoType.__add__`), put and stream calls; anything else (sets, paths, key or index
attributes, an existing non-number, a missing placeholder, a condition) goes to moto unchanged,
so moto still raises every error it raised.

moto's server finds the backend for each request's Host by listing its own package directory
(`os.listdir` and an `isdir` per entry, ~4.5 % of the emulator's CPU at pipeline scale); the
directory does not change while the server runs, so the list is read once.

moto serves each PutItem through Flask, a shape-walking parse of the JSON body (every attribute of
the item, by alias), a parse_qsl of that JSON, and its generic response serializer and CRC header:
with Enrich writing one conditional PutItem per ticket, ~80 % of the emulator's CPU per put was
this framing, not the put. A plain PutItem (table, item, condition, names, values; no binaries, no
ReturnValues/Expected/ReturnConsumedCapacity, no recorder, no IAM auth) is
decoded with json.loads and handed to moto's own DynamoHandler.put_item, which runs every check and
the backend's put and stream record as before; its answer (`{}`) gets the headers moto sends. If
moto raises (ConditionalCheckFailed, validation: all before anything is written), the request is
replayed to moto unchanged, so the error is moto's, byte for byte.

Every moto answer carries a 52-character request id, drawn one `random.choice` at a time (a fifth
of the server's own CPU per PutItem); here `random.choices` draws it in one call: the same length
and alphabet, still from moto's seedable generator. moto then searches the whole answer for an XML
`<RequestId>` to overwrite, a regex scan of every JSON body (GetRecords answers are ~100 KB); a
body without that tag is returned as it is, which is what the regex does with it. moto lists a
handler class's methods (`inspect.getmembers`) on every request to find the action; the list is
kept per class.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import io
import json
import math
import re
import string
import threading
from datetime import datetime
from typing import Any

_active = threading.local()
# DynamoDB applies every write to an item atomically (condition checked and item written as one step,
# ADD read and written as one step) and runs transactions serializably. moto's server answers requests
# on several threads and checks, reads and writes without a lock: two concurrent INSERTs of one key
# could both pass "no item has this key", two concurrent ADDs could lose one. One re-entrant lock
# (transactions call the single-item writes) serialises every write of the backend.
_WRITES = threading.RLock()
ITEM_SIZE_LIMIT = 405_000  # moto's LimitedSizeDict: between DynamoDB's measured 409 and 410 KB


class _CopyModule:
    """Stands in for the `copy` module inside moto.dynamodb.models: a table is not copied
    while a patched transaction runs (its touched items are snapshotted instead)."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, obj: Any, *args: Any) -> Any:
        if getattr(_active, "on", False) and isinstance(obj, self._table_type):
            return obj
        return copy.deepcopy(obj, *args)


def _restore(table: Any, hash_key: Any, range_key: Any, old: Any) -> None:
    if range_key is None:
        if old is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = old
    elif old is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = old


def _patched(replacement: Any, original: Any, **attributes: Any) -> Any:
    """Mark a replacement as ours (installing twice is a no-op), keep moto's original beside it
    (`__wrapped__`, which the tests compare against) and give it its counters."""
    replacement._supportlens_patched = True
    replacement.__wrapped__ = original
    for name, value in attributes.items():
        setattr(replacement, name, value)
    return replacement


def _patch_query(table_type: Any) -> None:
    if getattr(table_type.query, "_supportlens_patched", False):
        return
    original_query, original_all_items = table_type.query, table_type.all_items

    def all_items(self: Any) -> list[Any]:
        partition = getattr(_active, "partition", None)
        if partition is None or partition[0] is not self:
            return original_all_items(self)
        found = self.items.get(partition[1])
        if found is None:
            return []
        return list(found.values()) if self.range_key_attr else [found]

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("index_name") or (len(args) > 6 and args[6]) or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        _active.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _active.partition = None

    query._supportlens_patched = True  # type: ignore[attr-defined]
    table_type.query = query
    table_type.all_items = all_items


def _wire_json(value: Any) -> Any:
    """What moto's JSON serializer writes for the values of a stream record that JSON has no type for."""
    if isinstance(value, datetime):  # "unixtimestamp": whole seconds, or milliseconds as a fraction
        seconds = calendar.timegm(value.timetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    if isinstance(value, bytes):  # a top-level binary attribute; nested ones are base64 text already
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not in the wire shape")


def _patch_stream_records() -> None:
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    if getattr(DynamoDBStreamsHandler.get_records, "_supportlens_patched", False):
        return
    original = DynamoDBStreamsHandler.get_records

    def get_records(self: Any) -> Any:
        limit = self._get_param("Limit")
        result = self.backend.get_records(self._get_param("ShardIterator"), 1000 if limit is None else limit)
        try:
            return json.dumps(result, default=_wire_json)
        except TypeError:  # something unexpected in a record: let moto's serializer handle it
            from moto.core.responses import ActionResult

            get_records.fallbacks += 1  # type: ignore[attr-defined]
            return ActionResult(result)

    DynamoDBStreamsHandler.get_records = _patched(get_records, original, fallbacks=0)


def _patch_item_init() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if getattr(Item.__init__, "_supportlens_patched", False):
        return
    original = Item.__init__

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key, self.range_key = hash_key, range_key
        self.attrs = LimitedSizeDict()
        size = 0
        for key, value in attrs.items():
            attribute = DynamoType(value)
            size += bytesize(key) + attribute.size()
            if size > ITEM_SIZE_LIMIT:
                raise ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, attribute)

    Item.__init__ = _patched(__init__, original)


PARSE_CACHE_SIZE = 4096  # distinct expressions (ticket puts: one per chunk; counters: one per width)


class _CachedConditionParser:
    """Quacks like moto's ConditionExpressionParser: parse() and the placeholders it found."""

    def __init__(self, original: Any, cache: dict[Any, Any], expression: Any, names: Any, values: Any) -> None:
        self._original, self._cache = original, cache
        self._args = (expression, names, values)
        self.expr_attr_names_found: list[str] = []
        self.expr_attr_values_found: list[str] = []

    def _key(self) -> Any:
        expression, names, values = self._args
        if not expression:
            return None  # moto's parser is cheap for "no condition"
        try:  # the parsed tree holds the values; its nodes build fresh containers for L, M and sets on use
            return (expression, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
        except (TypeError, ValueError):
            return None  # binary values arrive as bytes: parsed every time, as before

    def parse(self) -> Any:
        key = self._key()
        hit = self._cache.get(key) if key is not None else None
        if hit is None:
            parser = self._original(*self._args)
            op = parser.parse()  # raises for a bad expression, exactly as before
            hit = (op, list(parser.expr_attr_names_found), list(parser.expr_attr_values_found))
            if key is not None:
                if len(self._cache) >= PARSE_CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = hit
        op, names_found, values_found = hit
        self.expr_attr_names_found, self.expr_attr_values_found = list(names_found), list(values_found)
        return op


def _patch_expression_parsing() -> None:
    import moto.dynamodb.comparisons as comparisons
    import moto.dynamodb.models as models
    import moto.dynamodb.responses as responses
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    if getattr(comparisons.create_condition_expression_parser, "_supportlens_patched", False):
        return
    original = comparisons.create_condition_expression_parser
    conditions: dict[Any, Any] = {}

    def create_condition_expression_parser(expression: Any, names: Any, values: Any) -> Any:
        return _CachedConditionParser(original, conditions, expression, names, values)

    _patched(create_condition_expression_parser, original, cache=conditions)
    for module in (comparisons, models, responses):  # get_filter_expression looks it up in comparisons
        module.create_condition_expression_parser = create_condition_expression_parser

    make = UpdateExpressionParser.make.__func__  # a classmethod
    updates: dict[tuple[Any, str], Any] = {}

    def cached_make(cls: Any, expression_str: str) -> Any:
        key = (cls, expression_str)
        ast = updates.get(key)
        if ast is None:
            ast = make(cls, expression_str)  # raises for a bad expression, exactly as before
            if len(updates) >= PARSE_CACHE_SIZE:
                updates.clear()
            updates[key] = ast
        return ast

    cached_make.__wrapped__ = make  # type: ignore[attr-defined]
    cached_make.cache = updates  # type: ignore[attr-defined]
    UpdateExpressionParser.make = classmethod(cached_make)


_PURE_ADD = re.compile(r"ADD\s+#\w+\s+:\w+(?:\s*,\s*#\w+\s+:\w+)*\s*")
_ADD_PAIR = re.compile(r"(#\w+)\s+(:\w+)")
_SETS = ("SS", "NS", "BS")


def _pure_add(table: Any, update_expression: Any, names: Any, values: Any) -> list[tuple[str, dict[str, str]]] | None:
    """[(attribute, value)] when the update is only ADDs of numbers or non-empty sets to distinct
    non-key top-level attributes named by placeholders; None when moto must decide."""
    if not isinstance(update_expression, str) or not _PURE_ADD.fullmatch(update_expression):
        return None
    names, values = names or {}, values or {}
    pairs = _ADD_PAIR.findall(update_expression)
    if any(n not in names or v not in values for n, v in pairs):
        return None  # moto names the missing placeholder
    keys = {d["AttributeName"] for d in table.attr or []} | {table.hash_key_attr, table.range_key_attr}
    plan = [(names[n], values[v]) for n, v in pairs]
    if any(not isinstance(a, str) or a in keys or not isinstance(v, dict) or len(v) != 1 for a, v in plan):
        return None  # key or index attributes: moto's rules and errors
    if not all(v.get("N") is not None or (list(v)[0] in _SETS and isinstance(list(v.values())[0], list) and list(v.values())[0])
               for _, v in plan):
        return None  # strings, lists, maps, empty sets: moto's errors
    if len({a for a, _ in plan}) != len(plan):
        return None  # overlapping paths
    return plan


def _patch_pure_add(backend: Any) -> None:
    from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge, ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType

    if hasattr(backend.update_item, "applied"):
        return
    original = backend.update_item

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _WRITES:  # the item is read, added to and written as one step
            return add_in_place(self, *args, **kwargs)

    def add_in_place(self: Any, table_name: str, key: dict[str, Any], update_expression: str,
                     expression_attribute_names: dict[str, Any], expression_attribute_values: dict[str, Any],
                     attribute_updates: Any = None, expected: Any = None, condition_expression: Any = None,
                     return_values_on_condition_check_failure: Any = None) -> Any:
        args = (table_name, key, update_expression, expression_attribute_names, expression_attribute_values,
                attribute_updates, expected, condition_expression, return_values_on_condition_check_failure)
        table = self.tables.get(table_name)
        plan = None
        if table is not None and not attribute_updates and not expected and not condition_expression:
            plan = _pure_add(table, update_expression, expression_attribute_names, expression_attribute_values)
        if plan is None or table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
            return original(self, *args)
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(hash_value, range_value)
        if item is not None and any(a in item.attrs and item.attrs[a].type != list(v)[0] for a, v in plan):
            return original(self, *args)  # moto's IncorrectDataType
        orig_item = copy.deepcopy(item)
        if item is None:  # as moto does: the key-only item first (its own stream record), then the update
            data = {table.hash_key_attr: {hash_value.type: hash_value.value}}
            if range_value:
                data[table.range_key_attr] = {range_value.type: range_value.value}
            table.put_item(data)
            item = table.get_item(hash_value, range_value)
        try:
            for attribute, value in plan:  # as moto's AddExecutor does it
                added = DynamoType(value)
                if added.is_set():  # appended in place, values already there skipped
                    current = item.attrs.get(attribute)
                    if current is None:
                        current = item.attrs[attribute] = DynamoType({added.type: []})
                    for v in added.value:
                        if v not in current.value:
                            current.value.append(v)
                else:
                    item.attrs[attribute] = (item.attrs.get(attribute) or DynamoType({"N": "0"})) + added
        except ItemSizeTooLarge:
            raise ItemSizeToUpdateTooLarge() from None
        if table.stream_shard is not None:
            table.stream_shard.add(orig_item, item)
        update_item.applied += 1  # type: ignore[attr-defined]
        return item

    backend.update_item = _patched(update_item, original, applied=0)


def _patch_module_list() -> None:
    import moto.backends as backends

    if getattr(backends.list_of_moto_modules, "_supportlens_patched", False):
        return
    original = backends.list_of_moto_modules
    modules: list[str] = []

    def list_of_moto_modules() -> list[str]:
        if not modules:
            modules.extend(original())
        return modules

    backends.list_of_moto_modules = _patched(list_of_moto_modules, original)


_PUT_TARGET = "DynamoDB_20120810.PutItem"
_PUT_FIELDS = frozenset({"TableName", "Item", "ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues"})
_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def _plain_values(values: Any) -> bool:
    """True when every AttributeValue is one that moto's shape parser hands on as json.loads gives it
    (it base64-decodes binaries and drops unknown members: those requests go to moto)."""
    for value in values:
        if type(value) is not dict or len(value) != 1:
            return False
        (kind, inner), = value.items()
        scalar = _SCALARS.get(kind)
        if scalar is not None:
            if type(inner) is not scalar:
                return False
        elif kind in ("SS", "NS"):
            if type(inner) is not list or any(type(x) is not str for x in inner):
                return False
        elif kind == "L":
            if type(inner) is not list or not _plain_values(inner):
                return False
        elif kind == "M":
            if type(inner) is not dict or not _plain_values(inner.values()):
                return False
        else:
            return False
    return True


def _plain_put(body: Any) -> bool:
    if type(body) is not dict or not _PUT_FIELDS.issuperset(body) or type(body.get("TableName")) is not str:
        return False
    item, names, values = body.get("Item"), body.get("ExpressionAttributeNames", {}), body.get("ExpressionAttributeValues", {})
    if type(item) is not dict or type(names) is not dict or type(values) is not dict:
        return False
    if type(body.get("ConditionExpression", "")) is not str or any(type(v) is not str for v in names.values()):
        return False
    return _plain_values(item.values()) and _plain_values(values.values())


def _plain_inserts(body: Any) -> bool:
    if type(body) is not dict or set(body) != {"Statements"} or type(body["Statements"]) is not list:
        return False
    return all(type(s) is dict and type(s.get("Parameters", [])) is list and _plain_values(s.get("Parameters", []))
               for s in body["Statements"])


def _fast_put(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(status, headers, body) of a plain PutItem, or a batch of plain INSERTs, that moto's handler
    answered; None: moto must serve it (the body is left readable for it)."""
    from moto import settings
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.models import mark_account_as_visited
    from moto.moto_api import recorder
    from moto.utilities.aws_headers import gen_amzn_requestid_long
    from werkzeug.datastructures import EnvironHeaders

    if (environ.get("REQUEST_METHOD") != "POST" or environ.get("HTTP_CONTENT_ENCODING")
            or not environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json-1.0")
            or recorder._user_enabled or not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT)
            or settings.DISABLE_GLOBAL_CORS or "HTTP_ORIGIN" in environ):  # flask-cors' answer is moto's to give
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)  # whatever happens next, moto can still read the request
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    headers = EnvironHeaders(environ)
    handler = DynamoHandler()
    handler.headers, handler.querystring = headers, {}
    insert = environ.get("HTTP_X_AMZ_TARGET") == _INSERT_TARGET
    plain = _plain_inserts(body) if insert else _plain_put(body)
    # moto reads the access key from a query string parsed out of the body when the header has none
    if not plain or b"AWSAccessKeyId" in raw:
        return None
    scheme, host = environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", "")
    full_url = f"{scheme}://{host}{environ.get('RAW_URI') or environ.get('PATH_INFO', '/')}"
    handler.region = handler.get_region_from_url(_Headers(headers), full_url)
    handler.access_key = handler.get_access_key()
    handler.current_account = handler.get_current_account()
    mark_account_as_visited(account_id=handler.current_account, access_key=handler.access_key,
                            service="dynamodb", region=handler.region)
    handler.body = body
    if insert:
        answers = answer_inserts(handler, body["Statements"])  # per statement: written or its error
        if answers is None:
            return None
        payload = json.dumps({"Responses": answers}, separators=(",", ":")).encode()
    else:
        try:
            result = handler.put_item()  # moto's checks, condition, backend put and stream record
        except Exception:  # raised before anything was written: moto answers it, error shape and all
            return None
        answer = result.result
        if answer != {}:  # nothing this fast path lets through asks for attributes or capacity
            raise RuntimeError(f"unexpected PutItem answer fields {sorted(answer)}")
        payload = b"{}"
    _fast_put.applied += 1  # type: ignore[attr-defined]
    request_id = gen_amzn_requestid_long()
    return "200 OK", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-requestid", request_id),
                      ("x-amz-crc32", str(binascii.crc32(payload))), ("server", "amazon.com"),
                      ("Content-Length", str(len(payload))), ("Access-Control-Allow-Origin", "*")], payload


_fast_put.applied = 0  # type: ignore[attr-defined]


_INSERT_TARGET = "DynamoDB_20120810.BatchExecuteStatement"


def answer_inserts(handler: Any, statements: Any) -> list[dict[str, Any]] | None:
    """Per-statement answers of a batch of plain INSERTs, as DynamoDB gives them; None when any statement
    is something else (moto answers the batch)."""
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    from .request_log import insert_shape

    if type(statements) is not list or not 1 <= len(statements) <= 25:
        return None
    planned = []
    for statement in statements:
        if type(statement) is not dict or not {"Statement", "Parameters"}.issuperset(statement):
            return None
        shape, parameters = insert_shape(statement.get("Statement")), statement.get("Parameters") or []
        if shape is None or type(parameters) is not list or len(parameters) != len(shape[1]) or len(set(shape[1])) != len(shape[1]):
            return None
        planned.append((shape[0], dict(zip(shape[1], parameters))))
    answers: list[dict[str, Any]] = []
    saved = handler.body
    try:
        for table_name, item in planned:
            table = handler.dynamodb_backend.tables.get(table_name)
            if table is None:
                answers.append({"Error": {"Code": "ResourceNotFound", "Message": "Requested resource not found"}})
                continue
            handler.body = {"TableName": table_name, "Item": item, "ConditionExpression": "attribute_not_exists(#key)",
                            "ExpressionAttributeNames": {"#key": table.hash_key_attr}}
            try:
                handler.put_item()
                answers.append({"TableName": table_name})
            except ConditionalCheckFailed:
                answers.append({"TableName": table_name, "Error": {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}})
            except JsonRESTError as exc:  # moto's validation of the item: the statement's error, the rest go on
                answers.append({"TableName": table_name, "Error": {"Code": "ValidationError", "Message": exc.message}})
    finally:
        handler.body = saved
    return answers


def _patch_partiql_insert() -> None:
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    if getattr(DynamoHandler.batch_execute_statement, "_supportlens_patched", False):
        return
    original = DynamoHandler.batch_execute_statement

    def batch_execute_statement(self: Any) -> Any:
        answers = answer_inserts(self, self.body.get("Statements"))
        return original(self) if answers is None else DynamoResult({"Responses": answers})

    DynamoHandler.batch_execute_statement = _patched(batch_execute_statement, original)


_FAST_TARGETS = (_PUT_TARGET, _INSERT_TARGET)


class _Headers:
    """What get_region_from_url reads of a request."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers


def _patch_put_item() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication.__call__, "_supportlens_patched", False):
        return
    original = DomainDispatcherApplication.__call__

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET") in _FAST_TARGETS and __call__.enabled:  # type: ignore[attr-defined]
            answer = _fast_put(environ)
            if answer is not None:
                status, headers, payload = answer
                start_response(status, headers)
                return [payload]
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = _patched(__call__, original, enabled=True)


def _patch_request_ids() -> None:
    from moto.moto_api._internal.moto_random import MotoRandom

    if getattr(MotoRandom.get_random_string, "_supportlens_patched", False):
        return
    original = MotoRandom.get_random_string

    def get_random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        text = "".join(self.choices(pool, k=length))
        return text.lower() if lower_case else text

    MotoRandom.get_random_string = _patched(get_random_string, original)


def _patch_response_framing() -> None:
    import moto.core.responses as responses
    from moto.core.responses import BaseResponse

    if getattr(BaseResponse._enrich_response, "_supportlens_patched", False):
        return
    enrich = BaseResponse._enrich_response  # a staticmethod: the plain function

    def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:  # nothing for moto's regex to replace
            if "status" in headers:
                headers["status"] = str(headers["status"])
            responses.gen_amzn_requestid_long(headers)
            return headers, body
        return enrich(headers, body)

    BaseResponse._enrich_response = staticmethod(_patched(_enrich_response, enrich))

    method_names = responses.method_names_from_class
    if getattr(method_names, "_supportlens_patched", False):
        return
    known: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        names = known.get(clazz)
        if names is None:
            names = known[clazz] = method_names(clazz)
        return names

    responses.method_names_from_class = _patched(method_names_from_class, method_names, cache=known)


def _patch_item_writes(backend: Any) -> None:
    """Each single-item write of the backend (put, update, delete; batch writes and INSERTs go through
    them) runs under `_WRITES`: check-then-write is one step, as on DynamoDB."""
    if getattr(backend, "_supportlens_serialised", False):
        return
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(backend, name)

        def write(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _WRITES:
                return _original(self, *args, **kwargs)

        setattr(backend, name, _patched(write, original))
    backend._supportlens_serialised = True


def apply() -> None:
    """Idempotent: patch moto's DynamoDB backend in this process."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    _patch_query(Table)
    _patch_stream_records()
    _patch_item_init()
    _patch_expression_parsing()
    _patch_item_writes(models.DynamoDBBackend)  # before the ADD fast path, which takes the lock itself
    _patch_pure_add(models.DynamoDBBackend)
    _patch_module_list()
    _patch_put_item()
    _patch_partiql_insert()
    _patch_request_ids()
    _patch_response_framing()

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_supportlens_patched", False):
        return
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _WRITES:  # snapshots too: a rollback must not restore what another transaction wrote
            snapshots = []
            for entry in transact_items:
                try:
                    op_type, op = next(iter(entry.items()))
                    table = self.tables[op["TableName"]]
                    hash_key, range_key = self.get_keys_value(table, op["Item"] if op_type == "Put" else op["Key"])
                except Exception:  # malformed entries are moto's to reject; nothing to snapshot
                    continue
                snapshots.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            _active.on = True
            try:
                return original(self, transact_items)
            except Exception:
                for table, hash_key, range_key, old in reversed(snapshots):
                    _restore(table, hash_key, range_key, old)
                raise
            finally:
                _active.on = False

    transact_write_items._supportlens_patched = True  # type: ignore[attr-defined]
    models.copy = _CopyModule(Table)
    backend.transact_write_items = transact_write_items
