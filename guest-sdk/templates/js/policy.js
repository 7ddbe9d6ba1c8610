// The `{{name}}` policy: S3 buckets are never public.
// Build it with `provkey build .`, test it with `node --test`.
import { Enforcement, Severity, exportPolicy, finding, rule } from "./provkey.js";

const NO_PUBLIC_ACL = rule("no-public-acl", "S3 buckets are never public.",
  Severity.HIGH, Enforcement.HARD_MANDATORY);
const PUBLIC = ["public-read", "public-read-write"];

export const myPolicy = {
  id: "{{name}}",
  version: "0.1.0",
  description: "S3 buckets are never public.",
  rules: [NO_PUBLIC_ACL],
  evaluate(plan, config) {
    config.denyUnknownFields([]);
    const findings = [];
    for (const change of plan.changesWhere((c) => c.type === "aws_s3_bucket" && c.creates)) {
      const acl = change.afterAt("/acl");
      if (acl.isUnknown) {
        findings.push(finding(NO_PUBLIC_ACL, change, {
          attribute: "/acl", severity: Severity.LOW, enforcement: Enforcement.ADVISORY,
          message: `\`${change.address}\`: the ACL is known only after apply`,
        }));
      } else if (acl.isKnown && PUBLIC.includes(acl.value)) {
        findings.push(finding(NO_PUBLIC_ACL, change, {
          attribute: "/acl",
          message: `\`${change.address}\` would be public (ACL \`${change.displayAfter("/acl")}\`)`,
          remediation: "set `acl` to `private`",
        }));
      }
    }
    return findings;
  },
};

export const policyApi = exportPolicy(myPolicy);
