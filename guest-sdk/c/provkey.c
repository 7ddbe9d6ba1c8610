/*
 * provkey.c: the C SDK for provkey policies (see provkey.h), and the glue between
 * a `pk_policy` and the wit-bindgen C bindings of `wit/plan@0.1.0`
 * (bindings/provkey_wit.{c,h}, generated: see regenerate-bindings.sh).
 */
#include "provkey.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provkey_wit.h"

/* ---- the arena: everything handed out lives until evaluate returns ---------- */

typedef struct arena_block {
    struct arena_block *next;
    max_align_t data[];
} arena_block;

static arena_block *arena_head;
/* cJSON trees parsed for this evaluation. */
static cJSON **trees;
static size_t trees_len, trees_cap;

static void out_of_memory(void) {
    /* No way to report it through the boundary without memory: trap. */
    abort();
}

void *pk_alloc(size_t size) {
    arena_block *block = calloc(1, sizeof(arena_block) + size + 1);
    if (block == NULL) {
        out_of_memory();
    }
    block->next = arena_head;
    arena_head = block;
    return block->data;
}

static char *copy_n(const char *text, size_t len) {
    char *out = pk_alloc(len + 1);
    if (len > 0) {
        memcpy(out, text, len);
    }
    out[len] = '\0';
    return out;
}

const char *pk_strdup(const char *text) {
    return text == NULL ? NULL : copy_n(text, strlen(text));
}

static const char *vformat(const char *format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int len = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (len < 0) {
        return "";
    }
    char *out = pk_alloc((size_t)len + 1);
    vsnprintf(out, (size_t)len + 1, format, args);
    return out;
}

const char *pk_sprintf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    const char *out = vformat(format, args);
    va_end(args);
    return out;
}

void pk_buf_printf(pk_buf *buf, const char *format, ...) {
    va_list args;
    va_start(args, format);
    const char *piece = vformat(format, args);
    va_end(args);
    size_t add = strlen(piece);
    if (buf->len + add + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap * 2 : 64;
        while (cap < buf->len + add + 1) {
            cap *= 2;
        }
        char *data = pk_alloc(cap);
        if (buf->len > 0) {
            memcpy(data, buf->data, buf->len);
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, piece, add);
    buf->len += add;
    buf->data[buf->len] = '\0';
}

const char *pk_buf_str(pk_buf *buf) {
    return buf->data == NULL ? "" : buf->data;
}

bool pk_starts_with(const char *text, const char *prefix) {
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

bool pk_ends_with(const char *text, const char *suffix) {
    size_t len = strlen(text), n = strlen(suffix);
    return len >= n && strcmp(text + len - n, suffix) == 0;
}

bool pk_strs_contains(pk_strs list, const char *item) {
    for (size_t i = 0; i < list.len; i++) {
        if (strcmp(list.items[i], item) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- errors ---------------------------------------------------------------- */

enum { NO_ERROR = -1 };
static int error_kind = NO_ERROR; /* PROVKEY_PLAN_TYPES_GUEST_ERROR_* */
static const char *error_message;

static bool record(int kind, const char *format, va_list args) {
    if (error_kind == NO_ERROR) {
        error_kind = kind;
        error_message = vformat(format, args);
    }
    return false;
}

bool pk_invalid_config(const char *format, ...) {
    va_list args;
    va_start(args, format);
    record(PROVKEY_PLAN_TYPES_GUEST_ERROR_INVALID_CONFIG, format, args);
    va_end(args);
    return false;
}

bool pk_invalid_input(const char *format, ...) {
    va_list args;
    va_start(args, format);
    record(PROVKEY_PLAN_TYPES_GUEST_ERROR_INVALID_INPUT, format, args);
    va_end(args);
    return false;
}

bool pk_failed(const char *format, ...) {
    va_list args;
    va_start(args, format);
    record(PROVKEY_PLAN_TYPES_GUEST_ERROR_FAILED, format, args);
    va_end(args);
    return false;
}

/* ---- JSON Pointers ------------------------------------------------------------ */

const char *pk_escape(const char *segment) {
    pk_buf buf = {0};
    for (const char *c = segment; *c != '\0'; c++) {
        if (*c == '~') {
            pk_buf_printf(&buf, "~0");
        } else if (*c == '/') {
            pk_buf_printf(&buf, "~1");
        } else {
            pk_buf_printf(&buf, "%c", *c);
        }
    }
    return pk_buf_str(&buf);
}

bool pk_is_within(const char *path, const char *prefix) {
    size_t n = strlen(prefix);
    return n == 0 || strcmp(path, prefix) == 0 ||
           (strncmp(path, prefix, n) == 0 && path[n] == '/');
}

/* Whether the raw (escaped) segment `raw[..len]` names `key`. */
static bool segment_is(const char *raw, size_t len, const char *key) {
    size_t k = 0;
    for (size_t i = 0; i < len; i++, k++) {
        char c = raw[i];
        if (c == '~' && i + 1 < len && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
            c = raw[i + 1] == '0' ? '~' : '/';
            i++;
        }
        if (key[k] != c) {
            return false;
        }
    }
    return key[k] == '\0';
}

/* An array index as JSON Pointer allows it: digits, no leading zero. */
static bool segment_index(const char *raw, size_t len, size_t *index) {
    if (len == 0 || (raw[0] == '0' && len > 1)) {
        return false;
    }
    size_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] < '0' || raw[i] > '9' || value > (SIZE_MAX - 9) / 10) {
            return false;
        }
        value = value * 10 + (size_t)(raw[i] - '0');
    }
    *index = value;
    return true;
}

const cJSON *pk_pointer(const cJSON *value, const char *path) {
    if (value == NULL || path == NULL) {
        return NULL;
    }
    if (*path == '\0') {
        return value;
    }
    if (*path != '/') {
        return NULL;
    }
    const char *segment = path + 1;
    for (;;) {
        const char *end = strchr(segment, '/');
        size_t len = end != NULL ? (size_t)(end - segment) : strlen(segment);
        const cJSON *next = NULL;
        if (cJSON_IsObject(value)) {
            /* The last of duplicate keys wins, as in every other SDK. */
            for (const cJSON *child = value->child; child != NULL; child = child->next) {
                if (child->string != NULL && segment_is(segment, len, child->string)) {
                    next = child;
                }
            }
        } else if (cJSON_IsArray(value)) {
            size_t index;
            if (segment_index(segment, len, &index) &&
                index < (size_t)cJSON_GetArraySize(value)) {
                next = cJSON_GetArrayItem(value, (int)index);
            }
        }
        if (next == NULL) {
            return NULL;
        }
        value = next;
        if (end == NULL) {
            return value;
        }
        segment = end + 1;
    }
}

/* ---- changes ------------------------------------------------------------------ */

static bool any_within(pk_strs paths, const char *path) {
    for (size_t i = 0; i < paths.len; i++) {
        if (pk_is_within(path, paths.items[i])) {
            return true;
        }
    }
    return false;
}

bool pk_is_unknown(const pk_change *change, const char *path) {
    return any_within(change->after_unknown, path);
}

bool pk_is_sensitive(const pk_change *change, const char *path) {
    return any_within(change->before_sensitive, path) || any_within(change->after_sensitive, path);
}

static bool any_overlapping(pk_strs paths, const char *path) {
    for (size_t i = 0; i < paths.len; i++) {
        if (pk_is_within(path, paths.items[i]) || pk_is_within(paths.items[i], path)) {
            return true;
        }
    }
    return false;
}

bool pk_contains_sensitive(const pk_change *change, const char *path) {
    return any_overlapping(change->before_sensitive, path) ||
           any_overlapping(change->after_sensitive, path);
}

static pk_attr attr_of(const cJSON *value) {
    pk_attr attr = {PK_ABSENT, NULL};
    if (value != NULL && !cJSON_IsNull(value)) {
        attr.state = PK_KNOWN;
        attr.value = value;
    }
    return attr;
}

pk_attr pk_after_at(const pk_change *change, const char *path) {
    if (pk_is_unknown(change, path)) {
        pk_attr unknown = {PK_UNKNOWN, NULL};
        return unknown;
    }
    return attr_of(pk_pointer(change->after, path));
}

pk_attr pk_before_at(const pk_change *change, const char *path) {
    return attr_of(pk_pointer(change->before, path));
}

const char *pk_attr_str(pk_attr attr) {
    return attr.state == PK_KNOWN && cJSON_IsString(attr.value) ? attr.value->valuestring : NULL;
}

static const char *display(const pk_change *change, const char *path, pk_attr attr) {
    if (pk_contains_sensitive(change, path)) {
        return "(sensitive)";
    }
    switch (attr.state) {
    case PK_UNKNOWN:
        return "(known after apply)";
    case PK_ABSENT:
        return "(absent)";
    case PK_KNOWN:
        break;
    }
    if (cJSON_IsString(attr.value)) {
        return attr.value->valuestring;
    }
    char *text = cJSON_PrintUnformatted(attr.value);
    if (text == NULL) {
        out_of_memory();
    }
    const char *out = pk_strdup(text);
    cJSON_free(text);
    return out;
}

const char *pk_display_after(const pk_change *change, const char *path) {
    return display(change, path, pk_after_at(change, path));
}

const char *pk_display_before(const pk_change *change, const char *path) {
    return display(change, path, pk_before_at(change, path));
}

bool pk_has_action(const pk_change *change, unsigned actions) {
    return (change->action & actions) != 0;
}

bool pk_creates(const pk_change *change) {
    return pk_has_action(change, PK_CREATES);
}

bool pk_destroys(const pk_change *change) {
    return pk_has_action(change, PK_DESTROYS);
}

bool pk_is_update(const pk_change *change) {
    return change->action == PK_UPDATE;
}

bool pk_matches(const pk_change *change, const pk_filter *filter) {
    if (filter == NULL) {
        return true;
    }
    if (filter->managed_only && !change->managed) {
        return false;
    }
    if (filter->actions != 0 && !pk_has_action(change, filter->actions)) {
        return false;
    }
    if (filter->types != NULL) {
        for (const char *const *type = filter->types; *type != NULL; type++) {
            if (strcmp(*type, change->type) == 0) {
                return true;
            }
        }
        return false;
    }
    return true;
}

static const pk_change *from(const pk_plan *plan, const pk_filter *filter, size_t index) {
    for (; index < plan->len; index++) {
        if (pk_matches(&plan->changes[index], filter)) {
            return &plan->changes[index];
        }
    }
    return NULL;
}

const pk_change *pk_first(const pk_plan *plan, const pk_filter *filter) {
    return from(plan, filter, 0);
}

const pk_change *pk_next(const pk_plan *plan, const pk_filter *filter, const pk_change *change) {
    return from(plan, filter, (size_t)(change - plan->changes) + 1);
}

const pk_change *pk_change_at(const pk_plan *plan, const char *address) {
    for (size_t i = 0; i < plan->len; i++) {
        if (strcmp(plan->changes[i].address, address) == 0) {
            return &plan->changes[i];
        }
    }
    return NULL;
}

/* ---- configuration ---------------------------------------------------------------- */

struct pk_config {
    const cJSON *fields; /* an object, or NULL for an empty configuration */
};

static const char *kind(const cJSON *value) {
    if (cJSON_IsBool(value)) {
        return "a boolean";
    }
    if (cJSON_IsNumber(value)) {
        return "a number";
    }
    if (cJSON_IsString(value)) {
        return "a string";
    }
    if (cJSON_IsArray(value)) {
        return "a list";
    }
    if (cJSON_IsObject(value)) {
        return "an object";
    }
    return "null";
}

const cJSON *pk_config_get(const pk_config *config, const char *field) {
    const cJSON *found = NULL;
    if (config->fields != NULL) {
        for (const cJSON *child = config->fields->child; child != NULL; child = child->next) {
            if (child->string != NULL && strcmp(child->string, field) == 0) {
                found = child;
            }
        }
    }
    return found == NULL || cJSON_IsNull(found) ? NULL : found;
}

bool pk_config_deny_unknown_fields(const pk_config *config, const char *const *known) {
    if (config->fields == NULL) {
        return true;
    }
    for (const cJSON *child = config->fields->child; child != NULL; child = child->next) {
        bool ok = false;
        size_t count = 0;
        for (const char *const *k = known; k != NULL && *k != NULL; k++, count++) {
            ok = ok || strcmp(*k, child->string) == 0;
        }
        if (ok) {
            continue;
        }
        pk_buf expected = {0};
        if (count == 0) {
            pk_buf_printf(&expected, "no fields");
        } else if (count == 1) {
            pk_buf_printf(&expected, "`%s`", known[0]);
        } else {
            pk_buf_printf(&expected, "one of ");
            for (size_t i = 0; i < count; i++) {
                pk_buf_printf(&expected, "%s`%s`", i > 0 ? ", " : "", known[i]);
            }
        }
        return pk_invalid_config("unknown field `%s` (expected %s)", child->string,
                                 pk_buf_str(&expected));
    }
    return true;
}

static bool wrong_type(const char *field, const char *what, const cJSON *value) {
    return pk_invalid_config("field `%s`: expected %s, found %s", field, what, kind(value));
}

bool pk_config_str(const pk_config *config, const char *field, const char **out, bool *present) {
    const cJSON *value = pk_config_get(config, field);
    *present = value != NULL;
    *out = NULL;
    if (value == NULL) {
        return true;
    }
    if (!cJSON_IsString(value)) {
        return wrong_type(field, "a string", value);
    }
    *out = value->valuestring;
    return true;
}

bool pk_config_bool(const pk_config *config, const char *field, bool *out, bool *present) {
    const cJSON *value = pk_config_get(config, field);
    *present = value != NULL;
    *out = false;
    if (value == NULL) {
        return true;
    }
    if (!cJSON_IsBool(value)) {
        return wrong_type(field, "`true` or `false`", value);
    }
    *out = cJSON_IsTrue(value);
    return true;
}

bool pk_config_number(const pk_config *config, const char *field, double *out, bool *present) {
    const cJSON *value = pk_config_get(config, field);
    *present = value != NULL;
    *out = 0;
    if (value == NULL) {
        return true;
    }
    if (!cJSON_IsNumber(value)) {
        return wrong_type(field, "a number", value);
    }
    *out = value->valuedouble;
    return true;
}

bool pk_config_str_list(const pk_config *config, const char *field, pk_strs *out, bool *present) {
    const cJSON *value = pk_config_get(config, field);
    *present = value != NULL;
    out->items = NULL;
    out->len = 0;
    if (value == NULL) {
        return true;
    }
    bool ok = cJSON_IsArray(value);
    for (const cJSON *item = ok ? value->child : NULL; item != NULL; item = item->next) {
        ok = ok && cJSON_IsString(item);
    }
    if (!ok) {
        return wrong_type(field, "a list of strings", value);
    }
    size_t len = (size_t)cJSON_GetArraySize(value);
    const char **items = pk_alloc(sizeof(char *) * (len + 1));
    size_t i = 0;
    for (const cJSON *item = value->child; item != NULL; item = item->next) {
        items[i++] = item->valuestring;
    }
    out->items = items;
    out->len = len;
    return true;
}

/* ---- findings --------------------------------------------------------------------- */

struct pk_findings {
    pk_finding **items; /* each finding stays where it is: pointers remain valid */
    size_t len, cap;
};

pk_finding *pk_report(pk_findings *out, const pk_rule *rule, const pk_change *change) {
    if (out->len == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        pk_finding **items = pk_alloc(cap * sizeof(pk_finding *));
        if (out->len > 0) {
            memcpy(items, out->items, out->len * sizeof(pk_finding *));
        }
        out->items = items;
        out->cap = cap;
    }
    pk_finding *finding = pk_alloc(sizeof(pk_finding));
    out->items[out->len++] = finding;
    finding->rule = rule->id;
    finding->severity = rule->severity;
    finding->enforcement = rule->enforcement;
    finding->message = "";
    finding->address = change != NULL ? change->address : NULL;
    finding->attribute = NULL;
    finding->remediation = NULL;
    return finding;
}

size_t pk_findings_len(const pk_findings *findings) {
    return findings->len;
}

const pk_finding *pk_findings_at(const pk_findings *findings, size_t index) {
    return index < findings->len ? findings->items[index] : NULL;
}

/* ---- the component boundary ------------------------------------------------------- */

extern const pk_policy *pk_exported_policy(void);

/* The bindings reference wit-bindgen's `*_component_type.o`; provkey embeds the
 * WIT itself (wit-component), so nothing needs linking in. */
void __component_type_object_force_link_provkey_wit(void) {}

/* A policy imports nothing. wasi-libc's printf and strtod keep a reference to
 * `stderr`, whose FILE writes, seeks and closes through WASI: these three calls
 * resolve here instead of becoming imports (they are never made: nothing is
 * written to stderr). A policy that uses files, clocks or the environment gets
 * real WASI imports, which `provkey build` refuses. */
int32_t __imported_wasi_snapshot_preview1_fd_write(int32_t fd, int32_t iovs, int32_t len,
                                                   int32_t written) {
    (void)fd, (void)iovs, (void)len, (void)written;
    return 8; /* EBADF */
}

int32_t __imported_wasi_snapshot_preview1_fd_seek(int32_t fd, int64_t offset, int32_t whence,
                                                  int32_t position) {
    (void)fd, (void)offset, (void)whence, (void)position;
    return 8;
}

int32_t __imported_wasi_snapshot_preview1_fd_close(int32_t fd) {
    (void)fd;
    return 8;
}

static void reset(void) {
    for (size_t i = 0; i < trees_len; i++) {
        cJSON_Delete(trees[i]);
    }
    free(trees);
    trees = NULL;
    trees_len = trees_cap = 0;
    while (arena_head != NULL) {
        arena_block *next = arena_head->next;
        free(arena_head);
        arena_head = next;
    }
    error_kind = NO_ERROR;
    error_message = NULL;
}

static void keep_tree(cJSON *tree) {
    if (trees_len == trees_cap) {
        size_t cap = trees_cap ? trees_cap * 2 : 64;
        cJSON **grown = realloc(trees, cap * sizeof(cJSON *));
        if (grown == NULL) {
            out_of_memory();
        }
        trees = grown;
        trees_cap = cap;
    }
    trees[trees_len++] = tree;
}

static const char *text_of(const provkey_wit_string_t *s) {
    return copy_n((const char *)s->ptr, s->len);
}

static const char *opt_text(const provkey_wit_option_string_t *s) {
    return s->is_some ? text_of(&s->val) : NULL;
}

static pk_strs strs_of(const provkey_wit_list_string_t *list) {
    const char **items = pk_alloc(sizeof(char *) * (list->len + 1));
    for (size_t i = 0; i < list->len; i++) {
        items[i] = text_of(&list->ptr[i]);
    }
    pk_strs out = {items, list->len};
    return out;
}

/* Parses JSON text; NULL text gives NULL. `false` (invalid input) when not JSON. */
static bool parse_value(const provkey_wit_option_string_t *text, const char *address,
                        const char *which, const cJSON **out) {
    *out = NULL;
    if (!text->is_some) {
        return true;
    }
    cJSON *tree = cJSON_ParseWithLength((const char *)text->val.ptr, text->val.len);
    if (tree == NULL) {
        return pk_invalid_input("`%s`: the `%s` value is not JSON", address, which);
    }
    keep_tree(tree);
    *out = tree;
    return true;
}

static const unsigned ACTIONS[] = {
    [PROVKEY_PLAN_TYPES_ACTION_CREATE] = PK_CREATE,   [PROVKEY_PLAN_TYPES_ACTION_REPLACE] = PK_REPLACE,
    [PROVKEY_PLAN_TYPES_ACTION_DESTROY] = PK_DESTROY, [PROVKEY_PLAN_TYPES_ACTION_READ] = PK_READ,
    [PROVKEY_PLAN_TYPES_ACTION_NO_OP] = PK_NO_OP,     [PROVKEY_PLAN_TYPES_ACTION_FORGET] = PK_FORGET,
    [PROVKEY_PLAN_TYPES_ACTION_UPDATE] = PK_UPDATE,
};

static bool convert_plan(const provkey_plan_types_plan_t *wit, pk_plan *plan) {
    pk_change *changes = pk_alloc(sizeof(pk_change) * (wit->changes.len + 1));
    plan->source = text_of(&wit->source);
    plan->format_version = text_of(&wit->format_version);
    plan->changes = changes;
    plan->len = wit->changes.len;
    for (size_t i = 0; i < wit->changes.len; i++) {
        const provkey_plan_types_resource_change_t *w = &wit->changes.ptr[i];
        pk_change *c = &changes[i];
        c->address = text_of(&w->address);
        c->previous_address = opt_text(&w->previous_address);
        c->module_path = text_of(&w->module_path);
        c->managed = w->mode == PROVKEY_PLAN_TYPES_RESOURCE_MODE_MANAGED;
        c->type = text_of(&w->type);
        c->name = text_of(&w->name);
        c->provider = text_of(&w->provider);
        c->action = w->action.tag <= PROVKEY_PLAN_TYPES_ACTION_UPDATE ? (pk_action)ACTIONS[w->action.tag]
                                                                      : PK_NO_OP;
        if (w->action.tag == PROVKEY_PLAN_TYPES_ACTION_REPLACE) {
            const provkey_plan_types_replacement_t *r = &w->action.val.replace;
            c->replacement.order = r->order == PROVKEY_PLAN_TYPES_REPLACE_ORDER_CREATE_BEFORE_DESTROY
                                       ? PK_CREATE_BEFORE_DESTROY
                                       : PK_DESTROY_BEFORE_CREATE;
            c->replacement.reason = opt_text(&r->reason);
            c->replacement.paths = strs_of(&r->paths);
        }
        if (!parse_value(&w->before, c->address, "before", &c->before) ||
            !parse_value(&w->after, c->address, "after", &c->after)) {
            return false;
        }
        c->after_unknown = strs_of(&w->after_unknown);
        c->before_sensitive = strs_of(&w->before_sensitive);
        c->after_sensitive = strs_of(&w->after_sensitive);
        c->depends_on = strs_of(&w->depends_on);
    }
    return true;
}

/* Blank text and `null` give an empty configuration; anything but an object is refused. */
static bool parse_config(const provkey_wit_string_t *text, pk_config *config) {
    config->fields = NULL;
    size_t start = 0;
    while (start < text->len && (text->ptr[start] == ' ' || text->ptr[start] == '\t' ||
                                 text->ptr[start] == '\n' || text->ptr[start] == '\r')) {
        start++;
    }
    if (start == text->len) {
        return true;
    }
    cJSON *tree = cJSON_ParseWithLength((const char *)text->ptr, text->len);
    if (tree == NULL) {
        return pk_invalid_config("the configuration is not JSON");
    }
    keep_tree(tree);
    if (cJSON_IsNull(tree)) {
        return true;
    }
    if (!cJSON_IsObject(tree)) {
        return pk_invalid_config("the configuration must be a JSON object, not %s", kind(tree));
    }
    config->fields = tree;
    return true;
}

static void dup_str(provkey_wit_string_t *out, const char *text) {
    provkey_wit_string_dup(out, text != NULL ? text : "");
}

static void dup_opt(provkey_wit_option_string_t *out, const char *text) {
    out->is_some = text != NULL;
    if (text != NULL) {
        dup_str(&out->val, text);
    }
}

static void *alloc_list(size_t count, size_t size) {
    if (count == 0) {
        return NULL;
    }
    void *out = malloc(count * size);
    if (out == NULL) {
        out_of_memory();
    }
    return out;
}

void exports_provkey_plan_policy_api_metadata(exports_provkey_plan_policy_api_policy_metadata_t *ret) {
    const pk_policy *policy = pk_exported_policy();
    dup_str(&ret->id, policy->id);
    dup_str(&ret->version, policy->version);
    dup_str(&ret->description, policy->description);
    size_t count = 0;
    while (policy->rules != NULL && policy->rules[count] != NULL) {
        count++;
    }
    ret->rules.ptr = alloc_list(count, sizeof(provkey_plan_types_rule_info_t));
    ret->rules.len = count;
    for (size_t i = 0; i < count; i++) {
        const pk_rule *rule = policy->rules[i];
        provkey_plan_types_rule_info_t *info = &ret->rules.ptr[i];
        dup_str(&info->id, rule->id);
        dup_str(&info->description, rule->description);
        info->severity = (provkey_plan_types_severity_t)rule->severity;
        info->enforcement = (provkey_plan_types_enforcement_t)rule->enforcement;
    }
    dup_opt(&ret->config_schema, policy->config_schema);
}

static bool declared(const pk_policy *policy, const char *rule) {
    for (size_t i = 0; policy->rules != NULL && policy->rules[i] != NULL; i++) {
        if (strcmp(policy->rules[i]->id, rule) == 0) {
            return true;
        }
    }
    return false;
}

static bool run(const pk_policy *policy, const exports_provkey_plan_policy_api_plan_t *wit_plan,
                const provkey_wit_string_t *config_text, pk_findings *findings) {
    pk_plan plan;
    pk_config config;
    if (!convert_plan(wit_plan, &plan) || !parse_config(config_text, &config)) {
        return false;
    }
    if (!policy->evaluate(&plan, &config, findings)) {
        if (error_kind == NO_ERROR) {
            pk_failed("policy `%s` returned false without recording an error", policy->id);
        }
        return false;
    }
    for (size_t i = 0; i < findings->len; i++) {
        const char *rule = findings->items[i]->rule;
        if (rule == NULL || !declared(policy, rule)) {
            return pk_failed("policy `%s` reported a finding of rule `%s`, which its metadata "
                             "does not declare",
                             policy->id, rule != NULL ? rule : "");
        }
    }
    return true;
}

bool exports_provkey_plan_policy_api_evaluate(exports_provkey_plan_policy_api_plan_t *plan,
                                              provkey_wit_string_t *config,
                                              exports_provkey_plan_policy_api_list_finding_t *ret,
                                              exports_provkey_plan_policy_api_guest_error_t *err) {
    const pk_policy *policy = pk_exported_policy();
    pk_findings findings = {0};
    bool ok = run(policy, plan, config, &findings);
    if (ok) {
        ret->ptr = alloc_list(findings.len, sizeof(provkey_plan_types_finding_t));
        ret->len = findings.len;
        for (size_t i = 0; i < findings.len; i++) {
            const pk_finding *f = findings.items[i];
            provkey_plan_types_finding_t *out = &ret->ptr[i];
            dup_str(&out->rule, f->rule);
            out->severity = (provkey_plan_types_severity_t)f->severity;
            out->enforcement = (provkey_plan_types_enforcement_t)f->enforcement;
            dup_str(&out->message, f->message);
            dup_opt(&out->address, f->address);
            dup_opt(&out->attribute, f->attribute);
            dup_opt(&out->remediation, f->remediation);
        }
    } else {
        err->tag = (uint8_t)error_kind;
        /* The three cases share the payload's layout. */
        dup_str(&err->val.failed, error_message);
    }
    reset();
    exports_provkey_plan_policy_api_plan_free(plan);
    provkey_wit_string_free(config);
    return ok;
}
