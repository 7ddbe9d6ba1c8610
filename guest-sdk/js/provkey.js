// Write provkey policies in JavaScript.
//
// A policy module imports from "./provkey.js" and exports the component's
// interface with one line:
//
//     export const policyApi = exportPolicy(myPolicy);
//
// where `myPolicy` is `{ id, version, description, rules, configSchema,
// evaluate(plan, config) }`. `provkey build` turns the module into a component
// with componentize-js; `node --test` runs the same code natively (see `testPlan`).
//
// Built components implement `provkey:plan@0.5.0`: the plan arrives as one JSON
// text, a change's values stay in the host until the policy reads them, and the
// findings leave as one JSON text in UTF-8 bytes. The
// first `afterAt("/tags/env")` asks the host for the member `tags` of every change
// in one call, and walks the rest here; reading `change.after` whole asks for that
// change's whole value. A policy that reads one or two attributes of each change
// never parses the rest.

/** The contract this SDK is written for. */
export const CONTRACT = "provkey:plan@0.5.0";

export const Severity = Object.freeze({
  INFO: "info", LOW: "low", MEDIUM: "medium", HIGH: "high", CRITICAL: "critical",
});

export const Enforcement = Object.freeze({
  ADVISORY: "advisory", SOFT_MANDATORY: "soft-mandatory", HARD_MANDATORY: "hard-mandatory",
});

/** The configuration is not what the policy accepts; the message names the field. */
export class InvalidConfig extends Error {}
export class InvalidInput extends Error {}

/** One JSON Pointer segment, escaped. */
export function escape(segment) {
  // Most keys have nothing to escape: two scans instead of two new strings.
  if (!segment.includes("~") && !segment.includes("/")) return segment;
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

function unescape(segment) {
  if (!segment.includes("~")) return segment;
  return segment.replaceAll("~1", "/").replaceAll("~0", "~");
}

/** Whether JSON Pointer `path` is `prefix` or inside it. */
export function isWithin(path, prefix) {
  return path === prefix || prefix === "" || path.startsWith(prefix + "/");
}

// Whether `path` is one of `pointers` (a Set) or inside one: a lookup per ancestor of
// the path instead of a scan of the list (plans list dozens of unknown values).
function covers(pointers, path) {
  if (pointers.size === 0) return false;
  if (pointers.has(path) || pointers.has("")) return true;
  for (let slash = path.indexOf("/", 1); slash !== -1; slash = path.indexOf("/", slash + 1)) {
    if (pointers.has(path.slice(0, slash))) return true;
  }
  return false;
}

// The value at `segments[from..]` (unescaped one by one) inside `value`, or
// NOT_FOUND. Paths are split once by the caller: string slicing is what costs most
// in an interpreter.
const NOT_FOUND = Symbol("not found");
function walk(value, segments, from) {
  for (let i = from; i < segments.length; i++) {
    const key = unescape(segments[i]);
    if (Array.isArray(value)) {
      if (!/^\d+$/.test(key) || Number(key) >= value.length) return NOT_FOUND;
      value = value[Number(key)];
    } else if (value !== null && typeof value === "object") {
      if (!Object.prototype.hasOwnProperty.call(value, key)) return NOT_FOUND;
      value = value[key];
    } else {
      return NOT_FOUND;
    }
  }
  return value;
}

/** An attribute value: `known` (with `value`), `unknown` until apply, or `absent`. */
export class Attr {
  constructor(state, value) { this.state = state; this.value = value; }
  get isKnown() { return this.state === "known"; }
  get isUnknown() { return this.state === "unknown"; }
  get isAbsent() { return this.state === "absent"; }
}
export const UNKNOWN = new Attr("unknown");
export const ABSENT = new Attr("absent");

function attr(value, path) {
  if (path === "") return known(value);
  if (!path.startsWith("/")) return ABSENT;
  return known(walk(value, path.split("/"), 1));
}

function known(value) {
  if (value === null || value === undefined || value === NOT_FOUND) return ABSENT;
  return new Attr("known", value);
}

// A value that is in the host and not yet read (see `Change`'s `host`).
const IN_HOST = Symbol("in host");
const ABSENT_MEMBER = Symbol("absent member");

// The values of the plan under evaluation, read through `plan-view`: one call per
// member for every change at once (the first change that reads `/tags` brings every
// change's tags), one call per whole value.
class HostValues {
  constructor(value, values) {
    this.value = value; // (change, side, pointer) -> JSON text or undefined
    this.values = values; // (side, pointer) -> JSON text: {"index": value, ...}
    this.members = new Map(); // "side/escaped key" -> {index: parsed member}
  }
  whole(index, side) {
    const text = this.value(index, side, "");
    return text == null ? null : JSON.parse(text);
  }
  member(index, side, key) {
    const cacheKey = `${side}/${key}`;
    let members = this.members.get(cacheKey);
    if (members === undefined) {
      members = JSON.parse(this.values(side, `/${key}`));
      this.members.set(cacheKey, members);
    }
    // Keys are change indexes (no prototype property is a number) and no JSON value
    // is `undefined`, so `undefined` is an absent member.
    const member = members[index];
    return member === undefined ? ABSENT_MEMBER : member;
  }
}

/** One planned change to one resource. */
export class Change {
  constructor(fields) {
    this.address = fields.address;
    this.type = fields.type;
    this.action = fields.action; // create, replace, destroy, read, no-op, forget, update
    this.name = fields.name ?? "";
    this.mode = fields.mode ?? "managed";
    this.provider = fields.provider ?? "";
    this.modulePath = fields.modulePath ?? "";
    this.previousAddress = fields.previousAddress ?? null;
    this.replacement = fields.replacement ?? null;
    // Parsed JSON values, null, or IN_HOST: then `host` (a HostValues) reads them as
    // change number `index` of the plan under evaluation.
    this.values = { before: fields.before ?? null, after: fields.after ?? null };
    this.host = fields.host ?? null;
    this.index = fields.index ?? 0;
    this.afterUnknown = fields.afterUnknown ?? [];
    this.beforeSensitive = fields.beforeSensitive ?? [];
    this.afterSensitive = fields.afterSensitive ?? [];
    this.dependsOn = fields.dependsOn ?? [];
  }
  /** The whole value before the change (parsed JSON), or null. */
  get before() { return this.whole("before"); }
  /** The whole value after the change (parsed JSON), or null. Prefer `afterAt` and
   * `afterHasKey`: they read only what they need. */
  get after() { return this.whole("after"); }
  set before(value) { this.values.before = value ?? null; }
  set after(value) { this.values.after = value ?? null; }
  whole(side) {
    if (this.values[side] === IN_HOST) this.values[side] = this.host.whole(this.index, side);
    return this.values[side];
  }
  /** Member `key` (escaped) of the value on `side`, or ABSENT_MEMBER. */
  member(side, key) { return this.host.member(this.index, side, key); }
  valueAt(side, path) {
    if (this.values[side] !== IN_HOST || path === "") return attr(this.whole(side), path);
    if (!path.startsWith("/")) return ABSENT;
    const segments = path.split("/");
    const member = this.member(side, segments[1]);
    if (member === ABSENT_MEMBER) return ABSENT;
    return known(walk(member, segments, 2));
  }
  /** Whether the value after the change has member `key` (even `null`). */
  afterHasKey(key) {
    const after = this.values.after;
    if (after !== IN_HOST) {
      return after !== null && typeof after === "object" && !Array.isArray(after)
        && Object.prototype.hasOwnProperty.call(after, key);
    }
    return this.member("after", escape(key)) !== ABSENT_MEMBER;
  }
  get creates() { return this.action === "create" || this.action === "replace"; }
  get destroys() { return this.action === "destroy" || this.action === "replace"; }
  get isUpdate() { return this.action === "update"; }
  get isManaged() { return this.mode === "managed"; }
  isUnknown(path) {
    if (this.afterUnknown.length === 0) return false;
    // Policies ask the same few paths of a change again and again.
    this.unknownMemo ??= new Map();
    let unknown = this.unknownMemo.get(path);
    if (unknown === undefined) {
      this.unknownSet ??= new Set(this.afterUnknown);
      unknown = covers(this.unknownSet, path);
      this.unknownMemo.set(path, unknown);
    }
    return unknown;
  }
  isSensitive(path) {
    this.sensitiveSet ??= new Set([...this.beforeSensitive, ...this.afterSensitive]);
    return covers(this.sensitiveSet, path);
  }
  containsSensitive(path) {
    return [...this.beforeSensitive, ...this.afterSensitive]
      .some((s) => isWithin(path, s) || isWithin(s, path));
  }
  afterAt(path) { return this.isUnknown(path) ? UNKNOWN : this.valueAt("after", path); }
  beforeAt(path) { return this.valueAt("before", path); }
  /** The value at `path` as text safe to print (never a sensitive value). */
  displayAfter(path) {
    if (this.containsSensitive(path)) return "(sensitive)";
    const a = this.afterAt(path);
    if (a.isUnknown) return "(known after apply)";
    if (a.isAbsent) return "(absent)";
    return typeof a.value === "string" ? a.value : JSON.stringify(a.value);
  }
}

export class Plan {
  constructor(changes, source = "provkey", formatVersion = "") {
    this.changes = changes; this.source = source; this.formatVersion = formatVersion;
  }
  changesOfType(...types) { return this.changes.filter((c) => types.includes(c.type)); }
  changesWhere(predicate) { return this.changes.filter(predicate); }
  managedChanges() { return this.changes.filter((c) => c.isManaged); }
  change(address) { return this.changes.find((c) => c.address === address) ?? null; }
}

/** A rule: `rule("id", "description", Severity.HIGH, Enforcement.HARD_MANDATORY)`. */
export function rule(id, description, severity = Severity.MEDIUM,
  enforcement = Enforcement.SOFT_MANDATORY) {
  return { id, description, severity, enforcement };
}

/** A finding about `change`; severity and enforcement default to the rule's. */
export function finding(rule, change, { message = "", attribute = null, remediation = null,
  severity = null, enforcement = null } = {}) {
  return {
    rule: rule.id,
    severity: severity ?? rule.severity,
    enforcement: enforcement ?? rule.enforcement,
    message,
    address: change ? change.address : null,
    attribute,
    remediation,
  };
}

/** The user's configuration; `null` fields count as absent. */
export class Config {
  constructor(text) {
    let value = {};
    if (text && text.trim()) {
      try { value = JSON.parse(text); } catch (e) {
        throw new InvalidConfig(`the configuration is not JSON: ${e.message}`);
      }
    }
    if (value === null) value = {};
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new InvalidConfig("the configuration must be a JSON object");
    }
    this.fields = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
  }
  get(field) { return this.fields[field]; }
  getStr(field) {
    const v = this.fields[field];
    if (v !== undefined && typeof v !== "string") {
      throw new InvalidConfig(`field \`${field}\`: expected a string`);
    }
    return v;
  }
  getBool(field) {
    const v = this.fields[field];
    if (v !== undefined && typeof v !== "boolean") {
      throw new InvalidConfig(`field \`${field}\`: expected a boolean`);
    }
    return v;
  }
  getStrList(field) {
    const v = this.fields[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
      throw new InvalidConfig(`field \`${field}\`: expected a list of strings`);
    }
    return v;
  }
  denyUnknownFields(known) {
    for (const key of Object.keys(this.fields)) {
      if (!known.includes(key)) {
        throw new InvalidConfig(`unknown field \`${key}\` (expected one of ${known.map((k) => `\`${k}\``).join(", ")})`);
      }
    }
  }
}

/** Evaluates natively, as the host would: for tests. */
export function run(policy, plan, configText = "{}") {
  return policy.evaluate(plan, new Config(configText));
}

/** A plan from the SDK's test fixture format: `{changes: [{address, type, action,
 * before, after, after_unknown, before_sensitive, after_sensitive}]}`. */
export function testPlan(data) {
  if (typeof data === "string") data = JSON.parse(data);
  return new Plan((data.changes ?? []).map((c) => new Change({
    ...c,
    type: c.type ?? c.address.split(".").at(-2).split("[")[0],
    afterUnknown: c.after_unknown, beforeSensitive: c.before_sensitive,
    afterSensitive: c.after_sensitive,
  })), data.source ?? "provkey", data.format_version ?? "");
}

// `provkey build` puts `import { value as planViewValue, values as planViewValues }
// from "provkey:plan/plan-view@0.5.0"` before the SDK; natively they are never called.
/* global planViewValue, planViewValues */
function fromWit(planJson) {
  const plan = JSON.parse(planJson);
  const host = new HostValues(planViewValue, planViewValues);
  return new Plan(plan.changes.map((c, index) => new Change({
    address: c.address, type: c.type, action: c.action, name: c.name, mode: c.mode,
    provider: c.provider, modulePath: c.module_path, previousAddress: c.previous_address,
    // Empty and null fields are left out of the summary (see the WIT); the
    // constructor gives them their defaults.
    replacement: c.replacement ?? null,
    before: c.has_before ? IN_HOST : null,
    after: c.has_after ? IN_HOST : null,
    host, index,
    afterUnknown: c.after_unknown, beforeSensitive: c.before_sensitive,
    afterSensitive: c.after_sensitive, dependsOn: c.depends_on,
  })), plan.source, plan.format_version);
}

function guestError(tag, message) {
  const error = new Error(message);
  error.payload = { tag, val: message };
  return error;
}

const opt = (v) => (v === null || v === undefined ? undefined : v);
const UTF8 = new TextEncoder();
const FINDING_FIELDS = [
  "rule", "severity", "enforcement", "message", "address", "attribute", "remediation",
];

/** The object componentize-js exports: `export const policyApi = exportPolicy(p)`. */
export function exportPolicy(policy) {
  return {
    metadata() {
      return {
        id: policy.id, version: policy.version ?? "0.1.0", description: policy.description ?? "",
        rules: policy.rules.map((r) => ({ ...r })), configSchema: opt(policy.configSchema),
      };
    },
    evaluate(plan, config) {
      let findings;
      try {
        findings = policy.evaluate(fromWit(plan), new Config(config));
      } catch (e) {
        if (e instanceof InvalidConfig) throw guestError("invalid-config", e.message);
        if (e instanceof InvalidInput) throw guestError("invalid-input", e.message);
        throw guestError("failed", `${e && e.name}: ${e && e.message}`);
      }
      // One JSON text (native) instead of a record per finding, lowered by
      // interpreted glue; the replacer keeps the finding fields only. Returned as
      // bytes: the glue copies a byte array natively, but measures a string one
      // character at a time in interpreted code (50 ms for 1,000 findings).
      return UTF8.encode(JSON.stringify(findings, FINDING_FIELDS));
    },
  };
}
