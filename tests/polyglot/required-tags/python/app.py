"""The `required-tags` policy in Python: a port of policies/required-tags (Rust).

The conformance test (tests/all/conformance.rs) requires the same findings from
both on every shared plan."""

from provkey_policy import Enforcement, Finding, InvalidConfig, Policy, Rule, Severity, escape, export

MISSING_TAGS = Rule(
    "missing-tags",
    "Taggable resources carry the required tags (AWS, Azure) or labels (Google).",
    Severity.MEDIUM, Enforcement.SOFT_MANDATORY)
TAGS_UNKNOWN = Rule(
    "tags-unknown",
    "The required tags cannot be checked because a tag map is known only after apply.",
    Severity.LOW, Enforcement.ADVISORY)
DEFAULT_TAGS = ["owner", "environment"]
# The same schema as policies/required-tags/config.schema.json.
CONFIG_SCHEMA = '{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "required-tags policy configuration", "type": "object", "properties": {"tags": {"description": "The tag (AWS, Azure) or label (Google) keys every taggable resource must carry. Default: [\\"owner\\", \\"environment\\"].", "type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}, "ignore_types": {"description": "Resource types that are not checked, for example `aws_iam_role`.", "type": "array", "items": {"type": "string", "minLength": 1}}}, "additionalProperties": false}'


def tag_attributes(resource_type):
    if resource_type.startswith("aws_"):
        return ["tags", "tags_all"]
    if resource_type.startswith("google_"):
        return ["labels", "terraform_labels"]
    if resource_type.startswith("azurerm_") or resource_type.startswith("azuread_"):
        return ["tags"]
    return ["tags", "labels"]


def check(change, required):
    present = [a for a in tag_attributes(change.type)
               if change.is_unknown("/" + a) or change.after_has_key(a)]
    if not present:
        return None
    primary = present[0]
    unknown_map = next((a for a in present if change.is_unknown("/" + a)), None)

    def carried(key):
        return any(not change.is_unknown("/" + a)
                   and not change.after_at("/%s/%s" % (a, escape(key))).is_absent
                   for a in present)

    missing = [k for k in required if not carried(k)]
    if not missing:
        return None
    noun = "labels" if primary.endswith("labels") else "tags"
    names = ", ".join("`%s`" % k for k in missing)
    address = change.address
    if unknown_map is not None:
        return Finding(
            TAGS_UNKNOWN, change, attribute="/" + unknown_map,
            message="`%s`: required %s %s cannot be checked: `%s` is known only after apply"
            % (address, noun, names, unknown_map),
            remediation="give `%s` known values in the configuration, or check the %s after apply"
            % (unknown_map, noun))
    return Finding(
        MISSING_TAGS, change, attribute="/" + primary,
        message="`%s` is missing required %s %s" % (address, noun, names),
        remediation="add %s to `%s` of `%s`" % (names, primary, address))


class RequiredTags(Policy):
    id = "required-tags"
    version = "0.1.0"
    description = ("Requires tags (AWS, Azure) or labels (Google) on every taggable "
                   "resource that is created, replaced or updated.")
    rules = [MISSING_TAGS, TAGS_UNKNOWN]
    config_schema = CONFIG_SCHEMA

    def evaluate(self, plan, config):
        config.deny_unknown_fields(["tags", "ignore_types"])
        required = config.get_str_list("tags")
        if required is None:
            required = DEFAULT_TAGS
        elif not required:
            raise InvalidConfig("field `tags`: name at least one tag")
        if any(t == "" for t in required):
            raise InvalidConfig("field `tags`: a tag key cannot be empty")
        ignored = config.get_str_list("ignore_types") or []
        findings = []
        for change in plan.changes_where(
                lambda c: c.is_managed and (c.creates or c.is_update) and c.type not in ignored):
            finding = check(change, required)
            if finding is not None:
                findings.append(finding)
        return findings


PolicyApi = export(RequiredTags())
