"""The `{{name}}` policy: S3 buckets are never public.

Build it with `provkey build .`, test it with `python -m unittest`."""

from provkey_policy import Enforcement, Finding, Policy, Rule, Severity, export

NO_PUBLIC_ACL = Rule("no-public-acl", "S3 buckets are never public.",
                     Severity.HIGH, Enforcement.HARD_MANDATORY)
PUBLIC = ("public-read", "public-read-write")


class MyPolicy(Policy):
    id = "{{name}}"
    version = "0.1.0"
    description = "S3 buckets are never public."
    rules = [NO_PUBLIC_ACL]

    def evaluate(self, plan, config):
        config.deny_unknown_fields([])
        findings = []
        for change in plan.changes_where(lambda c: c.type == "aws_s3_bucket" and c.creates):
            acl = change.after_at("/acl")
            if acl.is_unknown:
                findings.append(Finding(
                    NO_PUBLIC_ACL, change, attribute="/acl",
                    severity=Severity.LOW, enforcement=Enforcement.ADVISORY,
                    message="`%s`: the ACL is known only after apply" % change.address))
            elif acl.is_known and acl.value in PUBLIC:
                findings.append(Finding(
                    NO_PUBLIC_ACL, change, attribute="/acl",
                    message="`%s` would be public (ACL `%s`)"
                    % (change.address, change.display_after("/acl")),
                    remediation="set `acl` to `private`"))
        return findings


PolicyApi = export(MyPolicy())
