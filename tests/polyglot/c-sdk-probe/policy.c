/* A probe of the C SDK (guest-sdk/c): reports what it sees of each change, so that
 * its cases (tests/cases/, run by `provkey test`) pin unknown and sensitive values,
 * JSON Pointer escapes, display forms, configuration errors and the checks the SDK
 * makes of findings. Built and tested by tests/all/polyglot.rs. */
#include <string.h>

#include "provkey.h"

static const pk_rule PROBE = {"probe", "Reports what the SDK sees.", PK_INFO, PK_ADVISORY};
static const pk_rule UNDECLARED = {"undeclared", "Not in the metadata.", PK_INFO, PK_ADVISORY};
static const pk_rule *const RULES[] = {&PROBE, NULL};

static bool evaluate(const pk_plan *plan, const pk_config *config, pk_findings *out) {
    static const char *const KNOWN[] = {"mode", NULL};
    if (!pk_config_deny_unknown_fields(config, KNOWN)) {
        return false;
    }
    const char *mode;
    bool present;
    if (!pk_config_str(config, "mode", &mode, &present)) {
        return false;
    }
    if (present && strcmp(mode, "undeclared") == 0) {
        pk_report(out, &UNDECLARED, NULL);
        return true;
    }
    if (present && strcmp(mode, "fail") == 0) {
        return false;
    }
    PK_FOR_EACH(change, plan, NULL) {
        pk_finding *f = pk_report(out, &PROBE, change);
        f->attribute = pk_sprintf("/tags/%s", pk_escape("a/b~c"));
        f->message = pk_sprintf(
            "%s password=%s id=%s size=%s tag=%s tags=%s before=%s gone=%s",
            pk_destroys(change) ? "destroys" : "keeps", pk_display_after(change, "/password"),
            pk_display_after(change, "/id"), pk_display_after(change, "/size"),
            pk_display_after(change, f->attribute), pk_display_after(change, "/tags"),
            pk_display_before(change, "/size"), pk_display_after(change, "/nothing"));
    }
    pk_report(out, &PROBE, NULL)->message =
        pk_sprintf("%zu change(s) from %s", plan->len, plan->source);
    return true;
}

static const pk_policy POLICY = {
    .id = "c-sdk-probe",
    .version = "0.1.0",
    .description = "Reports what the C SDK sees.",
    .rules = RULES,
    .config_schema = NULL,
    .evaluate = evaluate,
};

PK_EXPORT_POLICY(POLICY);
