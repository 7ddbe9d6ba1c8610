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
// Built components implement `provkey:plan@0.2.0`: a change's values stay in the
// host until the policy reads them. `afterAt("/tags/env")` asks the host for the
// member `tags` once and walks the rest here; reading `change.after` whole asks for
// the whole value. A policy that reads one or two attributes of each change never
// parses the rest.

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
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
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

function pointer(value, path) {
  if (path === "") return { found: true, value };
  if (!path.startsWith("/")) return { found: false };
  for (const raw of path.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(value)) {
      if (!/^\d+$/.test(key) || Number(key) >= value.length) return { found: false };
      value = value[Number(key)];
    } else if (value !== null && typeof value === "object") {
      if (!Object.prototype.hasOwnProperty.call(value, key)) return { found: false };
      value = value[key];
    } else {
      return { found: false };
    }
  }
  return { found: true, value };
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
  if (value === null || value === undefined) return ABSENT;
  const found = pointer(value, path);
  if (!found.found || found.value === null || found.value === undefined) return ABSENT;
  return new Attr("known", found.value);
}

// A value that is in the host and not yet read (see `Change`'s `fetch`).
const IN_HOST = Symbol("in host");
const ABSENT_MEMBER = Symbol("absent member");

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
    // Parsed JSON values, null, or IN_HOST: then `fetch(side, pointer)` returns the
    // JSON text at `pointer` of side "before" or "after" (undefined when absent).
    this.values = { before: fields.before ?? null, after: fields.after ?? null };
    this.fetch = fields.fetch ?? null;
    this.members = new Map(); // "side/escaped top-level key" -> parsed member
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
  set before(value) { this.values.before = value ?? null; this.forget("before"); }
  set after(value) { this.values.after = value ?? null; this.forget("after"); }
  forget(side) {
    for (const key of [...this.members.keys()]) {
      if (key.startsWith(`${side}/`)) this.members.delete(key);
    }
  }
  whole(side) {
    if (this.values[side] === IN_HOST) {
      const text = this.fetch(side, "");
      this.values[side] = text == null ? null : JSON.parse(text);
    }
    return this.values[side];
  }
  /** Member `key` (escaped) of the value on `side`, asked of the host once. */
  member(side, key) {
    const cacheKey = `${side}/${key}`;
    if (!this.members.has(cacheKey)) {
      const text = this.fetch(side, `/${key}`);
      this.members.set(cacheKey, text == null ? ABSENT_MEMBER : JSON.parse(text));
    }
    return this.members.get(cacheKey);
  }
  valueAt(side, path) {
    if (this.values[side] !== IN_HOST || path === "") return attr(this.whole(side), path);
    if (!path.startsWith("/")) return ABSENT;
    const slash = path.indexOf("/", 1);
    const key = slash < 0 ? path.slice(1) : path.slice(1, slash);
    const member = this.member(side, key);
    if (member === ABSENT_MEMBER) return ABSENT;
    return attr(member, slash < 0 ? "" : path.slice(slash));
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
    this.unknownSet ??= new Set(this.afterUnknown);
    return covers(this.unknownSet, path);
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

// `provkey build` puts `import { value as planViewValue } from
// "provkey:plan/plan-view@0.2.0"` before the SDK; natively it is never called.
/* global planViewValue */
function fromWit(plan) {
  const fetcher = (index) => (side, pointer) => planViewValue(index, side, pointer);
  return new Plan(plan.changes.map((c, index) => new Change({
    address: c.address, type: c.type, action: c.action.tag, name: c.name, mode: c.mode,
    provider: c.provider, modulePath: c.modulePath, previousAddress: c.previousAddress,
    replacement: c.action.tag === "replace" ? c.action.val : null,
    before: c.hasBefore ? IN_HOST : null,
    after: c.hasAfter ? IN_HOST : null,
    fetch: fetcher(index),
    afterUnknown: c.afterUnknown, beforeSensitive: c.beforeSensitive,
    afterSensitive: c.afterSensitive, dependsOn: c.dependsOn,
  })), plan.source, plan.formatVersion);
}

function guestError(tag, message) {
  const error = new Error(message);
  error.payload = { tag, val: message };
  return error;
}

const opt = (v) => (v === null || v === undefined ? undefined : v);

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
      return findings.map((f) => ({
        rule: f.rule, severity: f.severity, enforcement: f.enforcement, message: f.message,
        address: opt(f.address), attribute: opt(f.attribute), remediation: opt(f.remediation),
      }));
    },
  };
}
