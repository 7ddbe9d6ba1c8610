"""Write provkey policies in Python.

A policy subclasses `Policy`, and the module exports it with one line:

    PolicyApi = export(MyPolicy())

`provkey build` turns the module into a component with componentize-py. The SDK
hides the WIT plumbing: `evaluate(plan, config)` receives a `Plan` of `Change`s,
attribute values by JSON Pointer, and returns a list of `Finding`s. The same code
runs natively under `python -m unittest` (see `test_plan`).

Built components implement `provkey:plan@0.3.0`: the plan arrives as one JSON text
and a change's values stay in the host until the policy reads them. The first
`after_at("/tags/env")` asks the host for the member `tags` of every change in one
call, and walks the rest here; reading `change.after` whole asks for that change's
whole value. A policy that reads one or two attributes of each change never parses
the rest.
"""

import gc
import json

# The contract this SDK is written for (`provkey build` reads it in a vendored copy).
CONTRACT = "provkey:plan@0.3.0"

__all__ = [
    "ABSENT", "UNKNOWN", "Attr", "Change", "Config", "Enforcement", "Failed", "Finding",
    "InvalidConfig", "InvalidInput", "Plan", "Policy", "Rule", "Severity", "escape",
    "export", "is_within", "test_change", "test_plan",
]


class Severity:
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Enforcement:
    ADVISORY = "advisory"
    SOFT_MANDATORY = "soft-mandatory"
    HARD_MANDATORY = "hard-mandatory"


class GuestError(Exception):
    kind = "failed"


class InvalidConfig(GuestError):
    """The configuration is not what the policy accepts; the text names the field."""
    kind = "invalid-config"


class InvalidInput(GuestError):
    kind = "invalid-input"


class Failed(GuestError):
    kind = "failed"


def escape(segment):
    """One JSON Pointer segment: `~` and `/` escaped."""
    if "~" not in segment and "/" not in segment:
        return segment
    return segment.replace("~", "~0").replace("/", "~1")


def is_within(path, prefix):
    """Whether JSON Pointer `path` is `prefix` or inside it."""
    return path == prefix or prefix == "" or path.startswith(prefix + "/")


def _covers(pointers, path):
    """Whether `path` is one of `pointers` or inside one (`is_within` of any)."""
    if not pointers:
        return False
    if path in pointers or "" in pointers:
        return True
    slash = path.find("/", 1)
    while slash != -1:
        if path[:slash] in pointers:
            return True
        slash = path.find("/", slash + 1)
    return False


def _pointer(value, path):
    if path == "":
        return True, value
    if not path.startswith("/"):
        return False, None
    return _walk(value, path.split("/"), 1)


def _walk(value, segments, start):
    """`(found, value)` at `segments[start:]` (escaped) inside `value`."""
    for raw in segments[start:]:
        key = raw.replace("~1", "/").replace("~0", "~") if "~" in raw else raw
        if isinstance(value, dict):
            if key not in value:
                return False, None
            value = value[key]
        elif isinstance(value, list):
            if not key.isdigit() or int(key) >= len(value):
                return False, None
            value = value[int(key)]
        else:
            return False, None
    return True, value


class Attr:
    """An attribute value: known (`value`), unknown until apply, or absent."""

    def __init__(self, state, value=None):
        self.state = state
        self.value = value

    @property
    def is_known(self):
        return self.state == "known"

    @property
    def is_unknown(self):
        return self.state == "unknown"

    @property
    def is_absent(self):
        return self.state == "absent"

    def __repr__(self):
        return "Attr(%s, %r)" % (self.state, self.value)


UNKNOWN = Attr("unknown")
ABSENT = Attr("absent")
_ABSENT_MEMBER = object()


# A value that is in the host and not yet read (see `Change.__init__`'s `_fetch`).
_IN_HOST = object()


class _HostValues:
    """The values of the plan under evaluation, read through `plan-view`: one call
    per member for every change at once (the first change that reads `/tags` brings
    every change's tags), one call per whole value."""

    def __init__(self, view):
        self._view = view
        self._sides = {"before": view.Side.BEFORE, "after": view.Side.AFTER}
        self._members = {}  # (side, escaped key) -> {change index as text: parsed member}

    def value(self, index, side, pointer):
        text = self._view.value(index, self._sides[side], pointer)
        return None if text is None else json.loads(text)

    def member(self, index_key, side, key):
        members = self._members.get((side, key))
        if members is None:
            members = json.loads(self._view.values(self._sides[side], "/" + key))
            self._members[(side, key)] = members
        return members.get(index_key, _ABSENT_MEMBER)


class Change:
    """One planned change to one resource."""

    def __init__(self, address, type, action, name="", mode="managed", provider="",
                 module_path="", previous_address=None, replacement=None, before=None,
                 after=None, after_unknown=(), before_sensitive=(), after_sensitive=(),
                 depends_on=()):
        self.address = address
        self.type = type
        self.action = action  # create, replace, destroy, read, no-op, forget, update
        self.name = name
        self.mode = mode
        self.provider = provider
        self.module_path = module_path
        self.previous_address = previous_address
        self.replacement = replacement  # dict: order, reason, paths (replace only)
        # Parsed JSON values, None, or _IN_HOST: then `_host` (a `_HostValues`) reads
        # them as change number `_index` of the plan under evaluation.
        self._before = before
        self._after = after
        self._host = None
        self._index = 0
        self._index_key = "0"
        self.after_unknown = list(after_unknown)
        self.before_sensitive = list(before_sensitive)
        self.after_sensitive = list(after_sensitive)
        self.depends_on = list(depends_on)
        # Sets of the pointers above, built on first use: a lookup per ancestor of a
        # path instead of a scan of the list (plans list dozens of unknown values).
        self._unknown = None
        self._sensitive = None

    @property
    def before(self):
        """The whole value before the change (parsed JSON), or None."""
        if self._before is _IN_HOST:
            self._before = self._load("before", "")
        return self._before

    @property
    def after(self):
        """The whole value after the change (parsed JSON), or None. Prefer
        `after_at` and `after_has_key`: they read only what they need."""
        if self._after is _IN_HOST:
            self._after = self._load("after", "")
        return self._after

    @before.setter
    def before(self, value):
        self._before = value

    @after.setter
    def after(self, value):
        self._after = value

    def _load(self, side, pointer):
        return self._host.value(self._index, side, pointer)

    def _member(self, side, key):
        """Member `key` (escaped) of the value on `side`, or `_ABSENT_MEMBER`."""
        return self._host.member(self._index_key, side, key)

    def _value_at(self, side, path):
        whole = self._before if side == "before" else self._after
        if whole is not _IN_HOST or path == "":
            return _attr(self.before if side == "before" else self.after, path)
        if not path.startswith("/"):
            return ABSENT
        segments = path.split("/")
        member = self._member(side, segments[1])
        if member is _ABSENT_MEMBER:
            return ABSENT
        found, value = _walk(member, segments, 2)
        return Attr("known", value) if found and value is not None else ABSENT

    def after_has_key(self, key):
        """Whether the value after the change has member `key` (even `null`)."""
        if self._after is not _IN_HOST:
            return isinstance(self._after, dict) and key in self._after
        return self._member("after", escape(key)) is not _ABSENT_MEMBER

    @property
    def creates(self):
        return self.action in ("create", "replace")

    @property
    def destroys(self):
        return self.action in ("destroy", "replace")

    @property
    def is_update(self):
        return self.action == "update"

    @property
    def is_managed(self):
        return self.mode == "managed"

    def is_unknown(self, path):
        if not self.after_unknown:
            return False
        if self._unknown is None:
            self._unknown = frozenset(self.after_unknown)
        return _covers(self._unknown, path)

    def is_sensitive(self, path):
        if self._sensitive is None:
            self._sensitive = frozenset(self.before_sensitive + self.after_sensitive)
        return _covers(self._sensitive, path)

    def contains_sensitive(self, path):
        return any(is_within(path, s) or is_within(s, path)
                   for s in self.before_sensitive + self.after_sensitive)

    def after_at(self, path):
        if self.is_unknown(path):
            return UNKNOWN
        return self._value_at("after", path)

    def before_at(self, path):
        return self._value_at("before", path)

    def display_after(self, path):
        """The value at `path` as text safe to print (never a sensitive value)."""
        if self.contains_sensitive(path):
            return "(sensitive)"
        attr = self.after_at(path)
        if attr.is_unknown:
            return "(known after apply)"
        if attr.is_absent:
            return "(absent)"
        if isinstance(attr.value, str):
            return attr.value
        return json.dumps(attr.value, separators=(",", ":"))


def _attr(value, path):
    if value is None:
        return ABSENT
    found, value = _pointer(value, path)
    if not found or value is None:
        return ABSENT
    return Attr("known", value)


class Plan:
    def __init__(self, changes, source="provkey", format_version=""):
        self.changes = list(changes)
        self.source = source
        self.format_version = format_version

    def changes_of_type(self, *types):
        return [c for c in self.changes if c.type in types]

    def changes_where(self, predicate):
        return [c for c in self.changes if predicate(c)]

    def managed_changes(self):
        return [c for c in self.changes if c.is_managed]

    def change(self, address):
        return next((c for c in self.changes if c.address == address), None)


class Rule:
    def __init__(self, id, description, severity=Severity.MEDIUM,
                 enforcement=Enforcement.SOFT_MANDATORY):
        self.id = id
        self.description = description
        self.severity = severity
        self.enforcement = enforcement


class Finding:
    """What a policy reports; severity and enforcement default to the rule's."""

    def __init__(self, rule, change=None, message="", attribute=None, remediation=None,
                 severity=None, enforcement=None, address=None):
        self.rule = rule.id
        self.severity = severity or rule.severity
        self.enforcement = enforcement or rule.enforcement
        self.message = message
        self.address = address if address is not None else (change.address if change else None)
        self.attribute = attribute
        self.remediation = remediation

    def as_dict(self):
        return dict(rule=self.rule, severity=self.severity, enforcement=self.enforcement,
                    message=self.message, address=self.address, attribute=self.attribute,
                    remediation=self.remediation)

    def __repr__(self):
        return "Finding(%r)" % self.as_dict()


class Config:
    """The user's configuration; `null` fields count as absent."""

    def __init__(self, text):
        try:
            value = json.loads(text) if text and text.strip() else {}
        except ValueError as e:
            raise InvalidConfig("the configuration is not JSON: %s" % e)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise InvalidConfig("the configuration must be a JSON object")
        self.fields = {k: v for k, v in value.items() if v is not None}

    def get(self, field):
        return self.fields.get(field)

    def get_str(self, field):
        value = self.fields.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidConfig("field `%s`: expected a string" % field)
        return value

    def get_bool(self, field):
        value = self.fields.get(field)
        if value is not None and not isinstance(value, bool):
            raise InvalidConfig("field `%s`: expected a boolean" % field)
        return value

    def get_str_list(self, field):
        value = self.fields.get(field)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidConfig("field `%s`: expected a list of strings" % field)
        return value

    def deny_unknown_fields(self, known):
        for key in self.fields:
            if key not in known:
                raise InvalidConfig("unknown field `%s` (expected one of %s)"
                                    % (key, ", ".join("`%s`" % k for k in known)))


class Policy:
    """Subclass it: set `id`, `version`, `description`, `rules`, `config_schema`,
    and implement `evaluate(plan, config) -> list of Finding`."""

    id = ""
    version = "0.1.0"
    description = ""
    rules = []
    config_schema = None

    def evaluate(self, plan, config):
        raise NotImplementedError

    def run(self, plan, config_text="{}"):
        """Evaluates natively, as the host would: for tests."""
        return self.evaluate(plan, Config(config_text))


# ---- testing -----------------------------------------------------------------

def test_change(address, action, **fields):
    """A change for tests: `test_change("aws_instance.a", "create", after={...})`."""
    type_ = fields.pop("type", None) or address.split(".")[-2].split("[")[0]
    return Change(address, type_, action, **fields)


def test_plan(data):
    """A plan from the SDK's test fixture format: a JSON text or dict with
    `changes`, each with `address`, `type`, `action`, `before`, `after`,
    `after_unknown`, `before_sensitive`, `after_sensitive` (lists of pointers)."""
    if isinstance(data, str):
        data = json.loads(data)
    changes = [test_change(c.pop("address"), c.pop("action"), **c)
               for c in (dict(c) for c in data.get("changes", []))]
    return Plan(changes, data.get("source", "provkey"), data.get("format_version", ""))


# ---- the component boundary ------------------------------------------------------

def _from_wit(plan_json):
    """The SDK's plan from the plan summary (JSON text): values stay in the host."""
    from wit_world.imports import plan_view
    data = json.loads(plan_json)
    host = _HostValues(plan_view)
    new = Change.__new__
    changes = []
    # Each change's attributes are set in one dict: `Change.__init__` would copy
    # the lists and assign them one by one, a cost paid for every change of the plan.
    for index, c in enumerate(data["changes"]):
        change = new(Change)
        change.__dict__ = {
            "address": c["address"], "type": c["type"], "action": c["action"],
            "name": c["name"], "mode": c["mode"], "provider": c["provider"],
            "module_path": c.get("module_path", ""),
            "previous_address": c.get("previous_address"),
            "replacement": c.get("replacement"),
            "_before": _IN_HOST if c["has_before"] else None,
            "_after": _IN_HOST if c["has_after"] else None,
            "_host": host, "_index": index, "_index_key": str(index),
            # Left out when empty (see the WIT); each change gets lists of its own.
            "after_unknown": c.get("after_unknown") or [],
            "before_sensitive": c.get("before_sensitive") or [],
            "after_sensitive": c.get("after_sensitive") or [],
            "depends_on": c.get("depends_on") or [],
            "_unknown": None, "_sensitive": None,
        }
        changes.append(change)
    return Plan(changes, data["source"], data["format_version"])


def _enum(cls, text):
    return getattr(cls, text.upper().replace("-", "_"))


def export(policy):
    """Returns the class componentize-py exports: `PolicyApi = export(MyPolicy())`."""

    class PolicyApi:
        def metadata(self):
            from wit_world.imports import types as t
            return t.PolicyMetadata(
                policy.id, policy.version, policy.description,
                [t.RuleInfo(r.id, r.description, _enum(t.Severity, r.severity),
                            _enum(t.Enforcement, r.enforcement)) for r in policy.rules],
                policy.config_schema)

        def evaluate(self, plan, config):
            from wit_world.imports import types as t
            from componentize_py_types import Err
            # The instance lives for this one call: collecting cycles among objects
            # that all die with it is wasted work (the host bounds the memory).
            gc.disable()
            try:
                findings = policy.evaluate(_from_wit(plan), Config(config))
            except InvalidConfig as e:
                raise Err(t.GuestError_InvalidConfig(str(e)))
            except InvalidInput as e:
                raise Err(t.GuestError_InvalidInput(str(e)))
            except Exception as e:
                raise Err(t.GuestError_Failed("%s: %s" % (type(e).__name__, e)))
            # One JSON text (CPython's C encoder) instead of a record per finding.
            return json.dumps([f.as_dict() for f in findings])

    return PolicyApi
