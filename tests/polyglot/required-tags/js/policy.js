// The `required-tags` policy in JavaScript: a port of policies/required-tags
// (Rust). The conformance test (tests/all/conformance.rs) requires the same
// findings from both on every shared plan.
import {
  Enforcement, InvalidConfig, Severity, escape, exportPolicy, finding, rule,
} from "./provkey.js";

const MISSING_TAGS = rule("missing-tags",
  "Taggable resources carry the required tags (AWS, Azure) or labels (Google).",
  Severity.MEDIUM, Enforcement.SOFT_MANDATORY);
const TAGS_UNKNOWN = rule("tags-unknown",
  "The required tags cannot be checked because a tag map is known only after apply.",
  Severity.LOW, Enforcement.ADVISORY);
const DEFAULT_TAGS = ["owner", "environment"];
// The same schema as policies/required-tags/config.schema.json.
const CONFIG_SCHEMA = "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"title\": \"required-tags policy configuration\", \"type\": \"object\", \"properties\": {\"tags\": {\"description\": \"The tag (AWS, Azure) or label (Google) keys every taggable resource must carry. Default: [\\\"owner\\\", \\\"environment\\\"].\", \"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 1}, \"minItems\": 1}, \"ignore_types\": {\"description\": \"Resource types that are not checked, for example `aws_iam_role`.\", \"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 1}}}, \"additionalProperties\": false}";

function tagAttributes(type) {
  if (type.startsWith("aws_")) return ["tags", "tags_all"];
  if (type.startsWith("google_")) return ["labels", "terraform_labels"];
  if (type.startsWith("azurerm_") || type.startsWith("azuread_")) return ["tags"];
  return ["tags", "labels"];
}

function check(change, required) {
  const present = tagAttributes(change.type)
    .filter((a) => change.isUnknown(`/${a}`) || change.afterHasKey(a));
  if (present.length === 0) return null;
  const primary = present[0];
  const unknownMap = present.find((a) => change.isUnknown(`/${a}`));
  const carried = (key) => present.some((a) => !change.isUnknown(`/${a}`)
    && !change.afterAt(`/${a}/${escape(key)}`).isAbsent);
  const missing = required.filter((k) => !carried(k));
  if (missing.length === 0) return null;
  const noun = primary.endsWith("labels") ? "labels" : "tags";
  const names = missing.map((k) => `\`${k}\``).join(", ");
  const address = change.address;
  if (unknownMap !== undefined) {
    return finding(TAGS_UNKNOWN, change, {
      attribute: `/${unknownMap}`,
      message: `\`${address}\`: required ${noun} ${names} cannot be checked: \`${unknownMap}\` is known only after apply`,
      remediation: `give \`${unknownMap}\` known values in the configuration, or check the ${noun} after apply`,
    });
  }
  return finding(MISSING_TAGS, change, {
    attribute: `/${primary}`,
    message: `\`${address}\` is missing required ${noun} ${names}`,
    remediation: `add ${names} to \`${primary}\` of \`${address}\``,
  });
}

export const requiredTags = {
  id: "required-tags",
  version: "0.1.0",
  description: "Requires tags (AWS, Azure) or labels (Google) on every taggable resource that is created, replaced or updated.",
  rules: [MISSING_TAGS, TAGS_UNKNOWN],
  configSchema: CONFIG_SCHEMA,
  evaluate(plan, config) {
    config.denyUnknownFields(["tags", "ignore_types"]);
    let required = config.getStrList("tags");
    if (required === undefined) required = DEFAULT_TAGS;
    else if (required.length === 0) throw new InvalidConfig("field `tags`: name at least one tag");
    if (required.some((t) => t === "")) throw new InvalidConfig("field `tags`: a tag key cannot be empty");
    const ignored = config.getStrList("ignore_types") ?? [];
    return plan.changesWhere((c) => c.isManaged && (c.creates || c.isUpdate)
      && !ignored.includes(c.type))
      .map((c) => check(c, required))
      .filter((f) => f !== null);
  },
};

export const policyApi = exportPolicy(requiredTags);
