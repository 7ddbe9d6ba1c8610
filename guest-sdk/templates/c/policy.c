/* The `{{name}}` policy: S3 buckets are never public.
 *
 * Build it with `provkey build .`, test it with `provkey test .` (the cases in
 * tests/cases/). The SDK: provkey.h (guest-sdk/c in the provkey repository). */
#include <string.h>

#include "provkey.h"

static const pk_rule NO_PUBLIC_ACL = {
    "no-public-acl",
    "S3 buckets are never public.",
    PK_HIGH,
    PK_HARD_MANDATORY,
};

static const pk_rule *const RULES[] = {&NO_PUBLIC_ACL, NULL};

static const char *const BUCKETS[] = {"aws_s3_bucket", NULL};

static bool is_public(const char *acl) {
    return strcmp(acl, "public-read") == 0 || strcmp(acl, "public-read-write") == 0;
}

static bool evaluate(const pk_plan *plan, const pk_config *config, pk_findings *out) {
    static const char *const KNOWN_FIELDS[] = {NULL};
    if (!pk_config_deny_unknown_fields(config, KNOWN_FIELDS)) {
        return false; /* the error names the field */
    }
    pk_filter created_buckets = {.types = BUCKETS, .actions = PK_CREATES};
    PK_FOR_EACH(change, plan, &created_buckets) {
        pk_attr acl = pk_after_at(change, "/acl");
        if (acl.state == PK_UNKNOWN) {
            pk_finding *f = pk_report(out, &NO_PUBLIC_ACL, change);
            f->attribute = "/acl";
            f->severity = PK_LOW;
            f->enforcement = PK_ADVISORY;
            f->message = pk_sprintf("`%s`: the ACL is known only after apply", change->address);
        } else if (pk_attr_str(acl) != NULL && is_public(pk_attr_str(acl))) {
            pk_finding *f = pk_report(out, &NO_PUBLIC_ACL, change);
            f->attribute = "/acl";
            f->message = pk_sprintf("`%s` would be public (ACL `%s`)", change->address,
                                    pk_display_after(change, "/acl"));
            f->remediation = "set `acl` to `private`";
        }
    }
    return true;
}

static const pk_policy POLICY = {
    .id = "{{name}}",
    .version = "0.1.0",
    .description = "S3 buckets are never public.",
    .rules = RULES,
    .config_schema = NULL,
    .evaluate = evaluate,
};

PK_EXPORT_POLICY(POLICY);
