/*
 * provkey.h: write provkey policies in C.
 *
 * A policy is a `pk_policy` (id, version, description, rules, configuration
 * schema, evaluate function) exported with one line, `PK_EXPORT_POLICY(policy);`.
 * `provkey build DIR` compiles it with clang (wasm32-wasi, wasi-libc) together
 * with this SDK, the wit-bindgen C bindings of `wit/plan@0.1.0` and cJSON, and
 * turns the module into a component. The SDK hides the WIT plumbing: evaluate
 * receives a `pk_plan` of `pk_change`s with their attribute values parsed
 * (cJSON), reads them by JSON Pointer, and reports `pk_finding`s.
 *
 * Memory: every string and value the SDK hands out (plan fields, `pk_sprintf`,
 * `pk_escape`, `pk_display_after`, ...) lives until evaluate returns; never free
 * it. Policies allocate nothing else unless they want to.
 *
 * Errors: functions that can fail return `false` and record the error; return
 * `false` from evaluate to report it (`pk_invalid_config`, `pk_invalid_input`,
 * `pk_failed` record one and return `false`).
 */
#ifndef PROVKEY_H
#define PROVKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "cJSON.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- rules and findings ------------------------------------------------- */

typedef enum { PK_INFO, PK_LOW, PK_MEDIUM, PK_HIGH, PK_CRITICAL } pk_severity;

typedef enum {
    /* Reported; never fails a check. */
    PK_ADVISORY,
    /* Fails a check unless an approver overrides it. */
    PK_SOFT_MANDATORY,
    /* Fails a check; cannot be overridden. */
    PK_HARD_MANDATORY,
} pk_enforcement;

/* A rule a policy may report, with its defaults. */
typedef struct pk_rule {
    const char *id;
    const char *description;
    pk_severity severity;
    pk_enforcement enforcement;
} pk_rule;

/* One thing a policy reports. `message` never contains a sensitive value (use
 * `pk_display_after`). NULL `address` = about the whole plan. */
typedef struct pk_finding {
    const char *rule;
    pk_severity severity;
    pk_enforcement enforcement;
    const char *message;
    const char *address;
    const char *attribute; /* a JSON Pointer, or NULL */
    const char *remediation; /* or NULL */
} pk_finding;

/* The findings evaluate returns. */
typedef struct pk_findings pk_findings;

/* ---- the plan ------------------------------------------------------------ */

/* What a plan does to one resource: bit flags, so that a filter can name several. */
typedef enum {
    PK_CREATE = 1 << 0,
    PK_REPLACE = 1 << 1,
    PK_DESTROY = 1 << 2,
    PK_READ = 1 << 3, /* a data source read during apply */
    PK_NO_OP = 1 << 4,
    PK_FORGET = 1 << 5, /* leaves the state without being destroyed */
    PK_UPDATE = 1 << 6, /* in place: provkey's planners never emit it */
} pk_action;

/* Actions that leave a new object (create, replace) or remove one (destroy, replace). */
#define PK_CREATES (PK_CREATE | PK_REPLACE)
#define PK_DESTROYS (PK_DESTROY | PK_REPLACE)

typedef enum { PK_DESTROY_BEFORE_CREATE, PK_CREATE_BEFORE_DESTROY } pk_replace_order;

/* A list of NUL-terminated strings. */
typedef struct pk_strs {
    const char *const *items;
    size_t len;
} pk_strs;

typedef struct pk_replacement {
    pk_replace_order order;
    const char *reason; /* or NULL */
    pk_strs paths; /* the attributes that force it, as JSON Pointers */
} pk_replacement;

/* One planned change to one resource. */
typedef struct pk_change {
    const char *address; /* `module.net.aws_instance.web[0]` */
    const char *previous_address; /* before a `moved` block, or NULL */
    const char *module_path; /* `module.net`; "" for the root module */
    bool managed; /* false for a data source */
    const char *type; /* `aws_security_group` */
    const char *name;
    const char *provider;
    pk_action action;
    pk_replacement replacement; /* when action is PK_REPLACE */
    const cJSON *before; /* the values before the change, or NULL (a create) */
    const cJSON *after; /* the known values after it, or NULL (a destroy) */
    pk_strs after_unknown; /* paths known only after apply */
    pk_strs before_sensitive; /* paths never to print */
    pk_strs after_sensitive;
    pk_strs depends_on; /* addresses (provkey plans) */
} pk_change;

/* A deployment plan: every change, in the order they are applied. */
typedef struct pk_plan {
    const char *source; /* `provkey`, `terraform` or `opentofu` */
    const char *format_version;
    const pk_change *changes;
    size_t len;
} pk_plan;

/* Which changes to visit: NULL `types` (a NULL-terminated list) = every type,
 * 0 `actions` = every action; `managed_only` skips data sources. */
typedef struct pk_filter {
    const char *const *types;
    unsigned actions;
    bool managed_only;
} pk_filter;

bool pk_matches(const pk_change *change, const pk_filter *filter);
/* The first matching change, or NULL. A NULL filter matches every change. */
const pk_change *pk_first(const pk_plan *plan, const pk_filter *filter);
/* The next matching change after `change`, or NULL. */
const pk_change *pk_next(const pk_plan *plan, const pk_filter *filter, const pk_change *change);
/* The change with this address, or NULL. */
const pk_change *pk_change_at(const pk_plan *plan, const char *address);

/* for each change matching `filter` (NULL: every change), in apply order */
#define PK_FOR_EACH(change, plan, filter)                                   \
    for (const pk_change *change = pk_first((plan), (filter)); change != NULL; \
         change = pk_next((plan), (filter), change))

bool pk_creates(const pk_change *change); /* create or replace */
bool pk_destroys(const pk_change *change); /* destroy or replace */
bool pk_is_update(const pk_change *change);
bool pk_has_action(const pk_change *change, unsigned actions);

/* ---- attributes, by JSON Pointer ("" the whole value, "/tags/Name", "/ingress/0") */

typedef enum { PK_ABSENT, PK_UNKNOWN, PK_KNOWN } pk_attr_state;

/* An attribute: known (with its value), known only after apply, or absent
 * (missing or null). */
typedef struct pk_attr {
    pk_attr_state state;
    const cJSON *value; /* when known */
} pk_attr;

pk_attr pk_after_at(const pk_change *change, const char *path);
pk_attr pk_before_at(const pk_change *change, const char *path);
/* The attribute's text when it is a known string, else NULL. */
const char *pk_attr_str(pk_attr attr);

/* Whether the value at `path` after the change is known only after apply. */
bool pk_is_unknown(const pk_change *change, const char *path);
/* Whether the value at `path` (before or after) is sensitive. */
bool pk_is_sensitive(const pk_change *change, const char *path);
/* Whether `path` is sensitive or holds a sensitive value somewhere inside. */
bool pk_contains_sensitive(const pk_change *change, const char *path);
/* The value at `path` as text safe to print: a string as is, any other value as
 * compact JSON, or `(sensitive)`, `(known after apply)`, `(absent)`. */
const char *pk_display_after(const pk_change *change, const char *path);
const char *pk_display_before(const pk_change *change, const char *path);

/* JSON Pointer helpers. */
const cJSON *pk_pointer(const cJSON *value, const char *path);
const char *pk_escape(const char *segment); /* `~` -> `~0`, `/` -> `~1` */
bool pk_is_within(const char *path, const char *prefix);

/* ---- configuration -------------------------------------------------------- */

/* The user's configuration: a JSON object; a null field counts as absent. */
typedef struct pk_config pk_config;

/* The field's value, or NULL when absent or null. */
const cJSON *pk_config_get(const pk_config *config, const char *field);
/* Refuses any field not in `known` (NULL-terminated), naming the first unknown one. */
bool pk_config_deny_unknown_fields(const pk_config *config, const char *const *known);
/* Typed getters: `false` (an invalid-config error naming the field) on a wrong
 * type; `*present` tells whether the field is set. */
bool pk_config_str(const pk_config *config, const char *field, const char **out, bool *present);
bool pk_config_bool(const pk_config *config, const char *field, bool *out, bool *present);
bool pk_config_number(const pk_config *config, const char *field, double *out, bool *present);
bool pk_config_str_list(const pk_config *config, const char *field, pk_strs *out, bool *present);
/* Whether `list` holds `item`. */
bool pk_strs_contains(pk_strs list, const char *item);

/* ---- the policy -------------------------------------------------------------- */

/* Checks the plan: report findings with `pk_report`, return `true`; or return
 * `false` after recording an error (`pk_invalid_config` ...). */
typedef bool (*pk_evaluate_fn)(const pk_plan *plan, const pk_config *config, pk_findings *out);

typedef struct pk_policy {
    const char *id; /* kebab-case */
    const char *version; /* semver */
    const char *description;
    const pk_rule *const *rules; /* NULL-terminated */
    const char *config_schema; /* a JSON Schema as text, or NULL */
    pk_evaluate_fn evaluate;
} pk_policy;

/* Exports the policy: `PK_EXPORT_POLICY(my_policy);` once, at file scope. */
#define PK_EXPORT_POLICY(policy)                                           \
    const pk_policy *pk_exported_policy(void) { return &(policy); }       \
    extern const pk_policy *pk_exported_policy(void)

/* Adds a finding of `rule` about `change` (NULL: the whole plan), with the rule's
 * severity and enforcement; set its `message`, `attribute` and `remediation`
 * (and override severity or enforcement) through the returned pointer. */
pk_finding *pk_report(pk_findings *out, const pk_rule *rule, const pk_change *change);
size_t pk_findings_len(const pk_findings *findings);
const pk_finding *pk_findings_at(const pk_findings *findings, size_t index);

/* Record an error and return false: `return pk_invalid_config("field `x`: ...");` */
bool pk_invalid_config(const char *format, ...) __attribute__((format(printf, 1, 2)));
bool pk_invalid_input(const char *format, ...) __attribute__((format(printf, 1, 2)));
bool pk_failed(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* ---- strings that live until evaluate returns ---------------------------------- */

const char *pk_sprintf(const char *format, ...) __attribute__((format(printf, 1, 2)));
const char *pk_strdup(const char *text);
void *pk_alloc(size_t size); /* zeroed */
bool pk_starts_with(const char *text, const char *prefix);
bool pk_ends_with(const char *text, const char *suffix);

/* A growing string: `pk_buf b = {0}; pk_buf_printf(&b, ...); pk_buf_str(&b)`. */
typedef struct pk_buf {
    char *data;
    size_t len;
    size_t cap;
} pk_buf;

void pk_buf_printf(pk_buf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The text so far ("" when empty); the buffer stays usable. */
const char *pk_buf_str(pk_buf *buf);

#ifdef __cplusplus
}
#endif

#endif /* PROVKEY_H */
