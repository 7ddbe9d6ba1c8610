/* A hostile policy in C for the hostile campaign (tests/tools/hostile-campaign.sh).
 * The config's `mode` picks the misbehaviour; the host must contain every one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provkey.h"

static const pk_rule NOISE = {"noise", "Findings made on purpose.", PK_LOW, PK_ADVISORY};
static const pk_rule UNDECLARED = {"undeclared", "Not declared.", PK_LOW, PK_ADVISORY};
static const pk_rule *const RULES[] = {&NOISE, NULL};

static volatile int sink;

static int recurse(volatile int depth) {
    volatile char frame[256];
    frame[0] = (char)depth;
    return recurse(depth + 1) + frame[0];
}

static bool evaluate(const pk_plan *plan, const pk_config *config, pk_findings *out) {
    const char *mode = "pass";
    bool present = false;
    if (!pk_config_str(config, "mode", &mode, &present)) {
        return false;
    }
    if (!present) {
        mode = "pass";
    }
    const pk_change *first = pk_change_at(plan, "aws_instance.web");
    if (first == NULL) {
        return pk_failed("the campaign plan has no `aws_instance.web`");
    }
    if (strcmp(mode, "loop") == 0) {
        for (;;) {
            sink++;
        }
    } else if (strcmp(mode, "memory") == 0) {
        for (;;) {
            char *block = malloc(1 << 20);
            if (block != NULL) {
                memset(block, 1, 1 << 20);
            }
        }
    } else if (strcmp(mode, "recursion") == 0) {
        sink = recurse(0);
    } else if (strcmp(mode, "trap") == 0) {
        abort();
    } else if (strcmp(mode, "oversized") == 0) {
        size_t size = (size_t)64 << 20;
        char *huge = malloc(size + 1);
        if (huge == NULL) {
            return pk_failed("out of memory");
        }
        memset(huge, 'x', size);
        huge[size] = '\0';
        pk_report(out, &NOISE, first)->message = huge;
    } else if (strcmp(mode, "many") == 0) {
        for (int i = 0; i < 1000000; i++) {
            pk_report(out, &NOISE, first)->message = "finding";
        }
    } else if (strcmp(mode, "undeclared-rule") == 0) {
        pk_report(out, &UNDECLARED, first)->message = "undeclared";
    } else if (strcmp(mode, "unknown-address") == 0) {
        pk_finding *f = pk_report(out, &NOISE, first);
        f->address = "aws_instance.nowhere";
        f->message = "nowhere";
    } else if (strcmp(mode, "error") == 0) {
        return pk_failed("failed on purpose");
    } else if (strcmp(mode, "leak-sensitive") == 0) {
        pk_report(out, &NOISE, first)->message =
            pk_sprintf("the password is %s", pk_display_after(first, "/password"));
        pk_attr secret = pk_after_at(first, "/password");
        if (pk_attr_str(secret) != NULL) {
            pk_report(out, &NOISE, first)->message = pk_sprintf("raw %s", pk_attr_str(secret));
        }
    } else if (strcmp(mode, "sleep") == 0) {
        /* A C policy may import no clock, so the longest wait it can make is a spin. */
        for (volatile unsigned long long spin = 0;; spin++) {
        }
    } else if (strcmp(mode, "chatty") == 0) {
        for (;;) {
            fputs("noise noise noise noise noise noise noise noise\n", stderr);
        }
    }
    return true;
}

static const pk_policy POLICY = {
    .id = "hostile-c",
    .version = "0.1.0",
    .description = "Misbehaves in the way the config's `mode` names.",
    .rules = RULES,
    .config_schema = NULL,
    .evaluate = evaluate,
};

PK_EXPORT_POLICY(POLICY);
