/* The `required-tags` policy in C: a port of policies/required-tags (Rust).
 *
 * The conformance test (tests/all/conformance.rs) requires the same findings from
 * both on every shared plan. */
#include <string.h>

#include "provkey.h"

static const pk_rule MISSING_TAGS = {
    "missing-tags",
    "Taggable resources carry the required tags (AWS, Azure) or labels (Google).",
    PK_MEDIUM,
    PK_SOFT_MANDATORY,
};

static const pk_rule TAGS_UNKNOWN = {
    "tags-unknown",
    "The required tags cannot be checked because a tag map is known only after apply.",
    PK_LOW,
    PK_ADVISORY,
};

static const pk_rule *const RULES[] = {&MISSING_TAGS, &TAGS_UNKNOWN, NULL};

/* The same schema as policies/required-tags/config.schema.json. */
static const char CONFIG_SCHEMA[] =
    "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", "
    "\"title\": \"required-tags policy configuration\", \"type\": \"object\", "
    "\"properties\": {\"tags\": {\"description\": \"The tag (AWS, Azure) or label (Google) keys "
    "every taggable resource must carry. Default: [\\\"owner\\\", \\\"environment\\\"].\", "
    "\"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 1}, \"minItems\": 1}, "
    "\"ignore_types\": {\"description\": \"Resource types that are not checked, for example "
    "`aws_iam_role`.\", \"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 1}}}, "
    "\"additionalProperties\": false}";

static const char *const DEFAULT_TAGS[] = {"owner", "environment"};
static const char *const KNOWN_FIELDS[] = {"tags", "ignore_types", NULL};

/* The attributes holding tags for a resource type, in order (NULL-terminated). */
static const char *const *tag_attributes(const char *type) {
    static const char *const AWS[] = {"tags", "tags_all", NULL};
    static const char *const GOOGLE[] = {"labels", "terraform_labels", NULL};
    static const char *const AZURE[] = {"tags", NULL};
    static const char *const OTHER[] = {"tags", "labels", NULL};
    if (pk_starts_with(type, "aws_")) {
        return AWS;
    }
    if (pk_starts_with(type, "google_")) {
        return GOOGLE;
    }
    if (pk_starts_with(type, "azurerm_") || pk_starts_with(type, "azuread_")) {
        return AZURE;
    }
    return OTHER;
}

static void check(const pk_change *change, pk_strs required, pk_findings *out) {
    const char *present[3];
    size_t n_present = 0;
    const char *unknown_map = NULL;
    for (const char *const *attr = tag_attributes(change->type); *attr != NULL; attr++) {
        const char *path = pk_sprintf("/%s", *attr);
        bool unknown = pk_is_unknown(change, path);
        bool in_after = cJSON_IsObject(change->after) &&
                        cJSON_GetObjectItemCaseSensitive(change->after, *attr) != NULL;
        if (unknown || in_after) {
            present[n_present++] = *attr;
            if (unknown && unknown_map == NULL) {
                unknown_map = *attr;
            }
        }
    }
    if (n_present == 0) {
        return;
    }
    const char *primary = present[0];
    pk_buf missing = {0};
    for (size_t k = 0; k < required.len; k++) {
        bool carried = false;
        for (size_t a = 0; a < n_present && !carried; a++) {
            if (pk_is_unknown(change, pk_sprintf("/%s", present[a]))) {
                continue;
            }
            const char *path = pk_sprintf("/%s/%s", present[a], pk_escape(required.items[k]));
            carried = pk_after_at(change, path).state != PK_ABSENT;
        }
        if (!carried) {
            pk_buf_printf(&missing, "%s`%s`", missing.len > 0 ? ", " : "", required.items[k]);
        }
    }
    if (missing.len == 0) {
        return;
    }
    const char *noun = pk_ends_with(primary, "labels") ? "labels" : "tags";
    const char *list = pk_buf_str(&missing);
    const char *address = change->address;
    if (unknown_map != NULL) {
        pk_finding *f = pk_report(out, &TAGS_UNKNOWN, change);
        f->attribute = pk_sprintf("/%s", unknown_map);
        f->message = pk_sprintf("`%s`: required %s %s cannot be checked: `%s` is known only after apply",
                                address, noun, list, unknown_map);
        f->remediation = pk_sprintf(
            "give `%s` known values in the configuration, or check the %s after apply", unknown_map,
            noun);
    } else {
        pk_finding *f = pk_report(out, &MISSING_TAGS, change);
        f->attribute = pk_sprintf("/%s", primary);
        f->message = pk_sprintf("`%s` is missing required %s %s", address, noun, list);
        f->remediation = pk_sprintf("add %s to `%s` of `%s`", list, primary, address);
    }
}

static bool evaluate(const pk_plan *plan, const pk_config *config, pk_findings *out) {
    if (!pk_config_deny_unknown_fields(config, KNOWN_FIELDS)) {
        return false;
    }
    pk_strs required, ignored;
    bool present;
    if (!pk_config_str_list(config, "tags", &required, &present)) {
        return false;
    }
    if (!present) {
        required.items = DEFAULT_TAGS;
        required.len = 2;
    } else if (required.len == 0) {
        return pk_invalid_config("field `tags`: name at least one tag");
    }
    for (size_t i = 0; i < required.len; i++) {
        if (required.items[i][0] == '\0') {
            return pk_invalid_config("field `tags`: a tag key cannot be empty");
        }
    }
    if (!pk_config_str_list(config, "ignore_types", &ignored, &present)) {
        return false;
    }
    pk_filter filter = {.actions = PK_CREATES | PK_UPDATE, .managed_only = true};
    PK_FOR_EACH(change, plan, &filter) {
        if (!pk_strs_contains(ignored, change->type)) {
            check(change, required, out);
        }
    }
    return true;
}

static const pk_policy REQUIRED_TAGS = {
    .id = "required-tags",
    .version = "0.1.0",
    .description = "Requires tags (AWS, Azure) or labels (Google) on every taggable resource "
                   "that is created, replaced or updated.",
    .rules = RULES,
    .config_schema = CONFIG_SCHEMA,
    .evaluate = evaluate,
};

PK_EXPORT_POLICY(REQUIRED_TAGS);
