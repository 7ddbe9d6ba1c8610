//! A deterministic generator of Terraform `show -json` plans (format version 1.2).
//!
//! Same `(changes, seed)`, same bytes: the generator draws from its own splitmix64
//! stream and writes JSON in a fixed order, so benchmark runs on different days and
//! machines read identical input.
//!
//! The plan mixes four AWS resource types with the shapes that make real plans
//! expensive to read: `aws_s3_bucket` (nested blocks), `aws_security_group` (lists of
//! ingress rules, some open to the world on port 22), `aws_iam_policy` (a policy
//! document held as a JSON string) and `aws_instance` (values unknown until apply).
//! About a third of the resources live in modules, some have a count index, a few
//! carry sensitive values. Like Terraform's, the output ends with `planned_values`
//! (every resource left after apply, by module), which tools such as Checkov read
//! instead of `resource_changes`. Actions are drawn as create 60%, update 25%, replace 10%
//! (half destroy-before-create, half create-before-destroy) and delete 5%.
//!
//! So that every rule of the side-by-side benchmark (`compare`) has something to
//! find, a few shapes are derived from the change's index (no extra random draws):
//! one resource in ten lacks the `cost-center` tag, instances carry an
//! `availability_zone` (one in five outside Europe, one create in four leaves it
//! unknown until apply), and one security-group create in sixteen has its
//! `ingress` list unknown until apply.

use serde_json::{Value, json};

/// The seed the benchmark uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x7072_6f76_6b65_7921;

/// The provider every generated resource belongs to.
pub const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

/// How many changes of each kind a generated plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    /// `["delete", "create"]`.
    pub replace_destroy_first: usize,
    /// `["create", "delete"]`.
    pub replace_create_first: usize,
    pub delete: usize,
    /// Changes whose resource lives in a module.
    pub in_module: usize,
    /// Changes with a sensitive value before or after.
    pub sensitive: usize,
    /// Security groups that end up with port 22 open to `0.0.0.0/0`.
    pub open_ssh: usize,
}

impl Counts {
    /// Every change, whatever its action.
    pub fn total(&self) -> usize {
        self.create
            + self.update
            + self.replace_destroy_first
            + self.replace_create_first
            + self.delete
    }

    /// Both orders of replacement.
    pub fn replace(&self) -> usize {
        self.replace_destroy_first + self.replace_create_first
    }
}

/// A generated plan: its JSON text and what it contains.
#[derive(Debug, Clone)]
pub struct Generated {
    pub json: String,
    pub counts: Counts,
}

/// Generates a plan with `changes` resource changes.
pub fn generate(changes: usize, seed: u64) -> Generated {
    let mut generator = Generator {
        rng: SplitMix64(seed),
        counts: Counts::default(),
    };
    let mut out = Vec::with_capacity(changes.saturating_mul(2_200) + 256);
    out.extend_from_slice(
        br#"{"format_version":"1.2","terraform_version":"1.9.8","applyable":true,"complete":true,"errored":false,"resource_changes":["#,
    );
    // `planned_values` as Terraform writes it: every resource that exists after
    // apply, its known values, by module. Tools such as Checkov read only this.
    let mut planned = Planned::default();
    for i in 0..changes {
        if i > 0 {
            out.push(b',');
        }
        let change = generator.change(i);
        planned.add(&change);
        // Writing a `Value` to a `Vec` cannot fail: keys are strings, no I/O happens.
        let _ = serde_json::to_writer(&mut out, &change);
    }
    out.extend_from_slice(br#"],"planned_values":{"root_module":{"resources":["#);
    out.extend_from_slice(&planned.root);
    out.extend_from_slice(br#"],"child_modules":["#);
    planned.write_children(&mut out);
    out.extend_from_slice(b"]}}}");
    Generated {
        // serde_json writes UTF-8 and the framing is ASCII.
        json: String::from_utf8(out).unwrap_or_default(),
        counts: generator.counts,
    }
}

/// The resources of `planned_values`: the root module's, then each module's, in
/// the order the modules first appear.
#[derive(Default)]
struct Planned {
    root: Vec<u8>,
    modules: Vec<(String, Vec<u8>)>,
}

impl Planned {
    /// Adds the resource a change leaves behind (none for a delete).
    fn add(&mut self, rc: &Value) {
        let change = &rc["change"];
        if change["after"].is_null() {
            return;
        }
        let mut resource = json!({
            "address": rc["address"],
            "mode": rc["mode"],
            "type": rc["type"],
            "name": rc["name"],
            "provider_name": rc["provider_name"],
            "schema_version": 0,
            "values": change["after"],
            "sensitive_values": change["after_sensitive"],
        });
        if let Some(index) = rc.get("index") {
            resource["index"] = index.clone();
        }
        let buffer = match rc["module_address"].as_str() {
            None => &mut self.root,
            Some(module) => {
                let at = match self.modules.iter().position(|(m, _)| m == module) {
                    Some(at) => at,
                    None => {
                        self.modules.push((module.to_string(), Vec::new()));
                        self.modules.len() - 1
                    }
                };
                match self.modules.get_mut(at) {
                    Some((_, buffer)) => buffer,
                    None => return,
                }
            }
        };
        if !buffer.is_empty() {
            buffer.push(b',');
        }
        let _ = serde_json::to_writer(&mut *buffer, &resource);
    }

    fn write_children(&self, out: &mut Vec<u8>) {
        for (i, (module, resources)) in self.modules.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"address":"#);
            let _ = serde_json::to_writer(&mut *out, module);
            out.extend_from_slice(br#","resources":["#);
            out.extend_from_slice(resources);
            out.extend_from_slice(b"]}");
        }
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let index = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(index).copied().unwrap_or_default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bucket,
    SecurityGroup,
    IamPolicy,
    Instance,
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Bucket => "aws_s3_bucket",
            Kind::SecurityGroup => "aws_security_group",
            Kind::IamPolicy => "aws_iam_policy",
            Kind::Instance => "aws_instance",
        }
    }

    fn name_prefix(self) -> &'static str {
        match self {
            Kind::Bucket => "logs",
            Kind::SecurityGroup => "sg",
            Kind::IamPolicy => "policy",
            Kind::Instance => "web",
        }
    }

    /// Attributes the provider computes: unknown in `after` until apply.
    fn computed(self) -> &'static [&'static str] {
        match self {
            Kind::Bucket => &["id", "arn", "bucket_domain_name"],
            Kind::SecurityGroup => &["id", "arn", "owner_id"],
            Kind::IamPolicy => &["id", "arn", "policy_id"],
            Kind::Instance => &[
                "id",
                "arn",
                "private_ip",
                "public_ip",
                "primary_network_interface_id",
            ],
        }
    }

    /// The attribute whose change forces a replacement.
    fn forces_new(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
            Kind::SecurityGroup => "name",
            Kind::IamPolicy => "name",
            Kind::Instance => "ami",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Create,
    Update,
    ReplaceDestroyFirst,
    ReplaceCreateFirst,
    Delete,
}

const MODULES: &[&str] = &[
    "module.network",
    "module.app[\"blue\"]",
    "module.app[\"green\"]",
    "module.storage.module.logs",
];
const ENVS: &[&str] = &["prod", "staging", "dev", "sandbox"];
const TEAMS: &[&str] = &["payments", "platform", "search", "identity", "data"];
const AMIS: &[&str] = &[
    "ami-0a1b2c3d4e5f60718",
    "ami-0123456789abcdef0",
    "ami-0fedcba9876543210",
    "ami-04b70fa74e45c3917",
];
const INSTANCE_TYPES: &[&str] = &[
    "t3.micro",
    "t3.small",
    "m6i.large",
    "m6i.xlarge",
    "c7g.2xlarge",
];
/// Availability zones of instances, by index: one in five is outside Europe.
const ZONES: &[&str] = &[
    "eu-west-1a",
    "eu-west-1b",
    "eu-central-1a",
    "us-east-1a",
    "eu-west-1c",
];
const S3_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:DeleteObject",
];
const PORTS: &[u64] = &[80, 443, 5432, 6379, 8080, 9090];

struct Generator {
    rng: SplitMix64,
    counts: Counts,
}

impl Generator {
    fn change(&mut self, i: usize) -> Value {
        let kind = match self.rng.below(100) {
            0..30 => Kind::Bucket,
            30..55 => Kind::SecurityGroup,
            55..70 => Kind::IamPolicy,
            _ => Kind::Instance,
        };
        let act = match self.rng.below(100) {
            0..60 => Act::Create,
            60..85 => Act::Update,
            85..90 => Act::ReplaceDestroyFirst,
            90..95 => Act::ReplaceCreateFirst,
            _ => Act::Delete,
        };
        let module = self.rng.chance(35).then(|| self.rng.pick(MODULES));
        let index = self.rng.chance(15).then(|| self.rng.below(3));
        let sensitive = self.rng.chance(4);

        let name = format!("{}_{i}", kind.name_prefix());
        let mut address = match module {
            Some(module) => format!("{module}.{}.{name}", kind.type_name()),
            None => format!("{}.{name}", kind.type_name()),
        };
        if let Some(index) = index {
            address.push_str(&format!("[{index}]"));
        }

        let before = self.attributes(kind, i, sensitive);
        let after = match act {
            Act::Create | Act::Delete => before.clone(),
            Act::Update => self.update(kind, &before),
            Act::ReplaceDestroyFirst | Act::ReplaceCreateFirst => self.replace(kind, &before),
        };

        let (actions, before, after): (&[&str], Value, Value) = match act {
            Act::Create => (&["create"], Value::Null, after),
            Act::Update => (&["update"], before, after),
            Act::ReplaceDestroyFirst => (&["delete", "create"], before, after),
            Act::ReplaceCreateFirst => (&["create", "delete"], before, after),
            Act::Delete => (&["delete"], before, Value::Null),
        };
        let (after, after_unknown) = self.unknowns(kind, act, i, after);
        let sensitive_marks = sensitive_markers(kind, sensitive);
        let before_sensitive = if before.is_null() {
            json!(false)
        } else {
            sensitive_marks.clone()
        };
        let after_sensitive = if after.is_null() {
            json!(false)
        } else {
            sensitive_marks
        };

        if kind == Kind::SecurityGroup && act != Act::Delete && opens_ssh(&after) {
            self.counts.open_ssh += 1;
        }
        match act {
            Act::Create => self.counts.create += 1,
            Act::Update => self.counts.update += 1,
            Act::ReplaceDestroyFirst => self.counts.replace_destroy_first += 1,
            Act::ReplaceCreateFirst => self.counts.replace_create_first += 1,
            Act::Delete => self.counts.delete += 1,
        }
        if module.is_some() {
            self.counts.in_module += 1;
        }
        if sensitive {
            self.counts.sensitive += 1;
        }

        let mut change = json!({
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": after_unknown,
            "before_sensitive": before_sensitive,
            "after_sensitive": after_sensitive,
        });
        let mut rc = json!({
            "address": address,
            "mode": "managed",
            "type": kind.type_name(),
            "name": name,
            "provider_name": PROVIDER,
        });
        if let Some(module) = module {
            rc["module_address"] = json!(module);
        }
        if let Some(index) = index {
            rc["index"] = json!(index);
        }
        if matches!(act, Act::ReplaceDestroyFirst | Act::ReplaceCreateFirst) {
            if self.rng.chance(80) {
                rc["action_reason"] = json!("replace_because_cannot_update");
                change["replace_paths"] = json!([[kind.forces_new()]]);
            } else {
                rc["action_reason"] = json!("replace_by_request");
            }
        }
        rc["change"] = change;
        rc
    }

    /// The full attribute values of a resource, computed ones included.
    fn attributes(&mut self, kind: Kind, i: usize, sensitive: bool) -> Value {
        let env = self.rng.pick(ENVS);
        let team = self.rng.pick(TEAMS);
        let mut tags = json!({
            "Name": format!("{}-{i}", kind.name_prefix()),
            "env": env,
            "team": team,
            "cost-center": format!("cc-{}", self.rng.below(40)),
        });
        if i % 10 == 3
            && let Some(tags) = tags.as_object_mut()
        {
            tags.remove("cost-center");
        }
        if sensitive && kind != Kind::Instance {
            tags["owner-email"] = json!(format!("owner{}@example.com", self.rng.below(1000)));
        }
        match kind {
            Kind::Bucket => {
                let bucket = format!("provkey-bench-{env}-{i:06}");
                json!({
                    "bucket": bucket,
                    "acl": if self.rng.chance(10) { "public-read" } else { "private" },
                    "force_destroy": false,
                    "tags": tags,
                    "versioning": [{"enabled": self.rng.chance(70), "mfa_delete": false}],
                    "server_side_encryption_configuration": [{"rule": [{
                        "apply_server_side_encryption_by_default": [{
                            "sse_algorithm": "aws:kms",
                            "kms_master_key_id": format!("arn:aws:kms:eu-west-1:123456789012:key/{:016x}", self.rng.next()),
                        }],
                        "bucket_key_enabled": true,
                    }]}],
                    "id": bucket,
                    "arn": format!("arn:aws:s3:::{bucket}"),
                    "bucket_domain_name": format!("{bucket}.s3.amazonaws.com"),
                })
            }
            Kind::SecurityGroup => {
                let rules = 1 + self.rng.below(3);
                let mut ingress: Vec<Value> = (0..rules)
                    .map(|_| {
                        let port = PORTS
                            .get(usize::try_from(self.rng.below(PORTS.len() as u64)).unwrap_or(0))
                            .copied()
                            .unwrap_or(443);
                        let cidr = format!("10.{}.0.0/16", self.rng.below(256));
                        ingress_rule(port, &cidr, "service traffic")
                    })
                    .collect();
                if self.rng.chance(10) {
                    ingress.push(ingress_rule(22, "0.0.0.0/0", "ssh from anywhere"));
                }
                json!({
                    "name": format!("sg-{team}-{i}"),
                    "description": format!("Security group for {team} ({env})"),
                    "vpc_id": format!("vpc-{:08x}", self.rng.below(1 << 32)),
                    "revoke_rules_on_delete": false,
                    "ingress": ingress,
                    "egress": [ingress_rule(0, "0.0.0.0/0", "all egress")],
                    "tags": tags,
                    "id": format!("sg-{:017x}", self.rng.below(1 << 60)),
                    "arn": format!("arn:aws:ec2:eu-west-1:123456789012:security-group/sg-{i:08x}"),
                    "owner_id": "123456789012",
                })
            }
            Kind::IamPolicy => {
                let document = if self.rng.chance(10) {
                    json!({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "*", "Resource": "*"}
                    ]})
                } else {
                    let actions: Vec<&str> = (0..1 + self.rng.below(3))
                        .map(|_| self.rng.pick(S3_ACTIONS))
                        .collect();
                    json!({"Version": "2012-10-17", "Statement": [
                        {"Sid": format!("Bucket{i}"), "Effect": "Allow", "Action": actions,
                         "Resource": [format!("arn:aws:s3:::provkey-bench-{env}-{i:06}"), format!("arn:aws:s3:::provkey-bench-{env}-{i:06}/*")]}
                    ]})
                };
                json!({
                    "name": format!("{team}-{env}-policy-{i}"),
                    "path": "/",
                    "description": format!("Access for {team} in {env}"),
                    "policy": document.to_string(),
                    "tags": tags,
                    "id": format!("arn:aws:iam::123456789012:policy/{team}-{env}-policy-{i}"),
                    "arn": format!("arn:aws:iam::123456789012:policy/{team}-{env}-policy-{i}"),
                    "policy_id": format!("ANPA{:016X}", self.rng.next()),
                })
            }
            Kind::Instance => {
                let user_data = sensitive
                    .then(|| format!("#!/bin/sh\nexport TOKEN={:016x}\n", self.rng.next()));
                json!({
                    "ami": self.rng.pick(AMIS),
                    "availability_zone": ZONES.get(i % ZONES.len()).copied().unwrap_or_default(),
                    "instance_type": self.rng.pick(INSTANCE_TYPES),
                    "subnet_id": format!("subnet-{:08x}", self.rng.below(1 << 32)),
                    "vpc_security_group_ids": [format!("sg-{:017x}", self.rng.below(1 << 60))],
                    "associate_public_ip_address": self.rng.chance(20),
                    "monitoring": self.rng.chance(50),
                    "ebs_optimized": true,
                    "user_data": user_data,
                    "root_block_device": [{
                        "volume_size": 8 * (1 + self.rng.below(8)),
                        "volume_type": "gp3",
                        "encrypted": true,
                        "delete_on_termination": true,
                    }],
                    "metadata_options": [{"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}],
                    "tags": tags,
                    "id": format!("i-{:017x}", self.rng.below(1 << 60)),
                    "arn": format!("arn:aws:ec2:eu-west-1:123456789012:instance/i-{i:017x}"),
                    "private_ip": format!("10.{}.{}.{}", self.rng.below(256), self.rng.below(256), 1 + self.rng.below(254)),
                    "public_ip": format!("52.{}.{}.{}", self.rng.below(256), self.rng.below(256), 1 + self.rng.below(254)),
                    "primary_network_interface_id": format!("eni-{:017x}", self.rng.below(1 << 60)),
                })
            }
        }
    }

    /// An in-place change of one or two attributes.
    fn update(&mut self, kind: Kind, before: &Value) -> Value {
        let mut after = before.clone();
        after["tags"]["env"] = json!(self.rng.pick(ENVS));
        match kind {
            Kind::Bucket => {
                after["versioning"][0]["enabled"] = json!(true);
            }
            Kind::SecurityGroup => {
                let (port, cidr) = if self.rng.chance(30) {
                    (22, "0.0.0.0/0")
                } else {
                    (443, "10.0.0.0/8")
                };
                if let Some(rules) = after["ingress"].as_array_mut() {
                    rules.push(ingress_rule(port, cidr, "added by change"));
                }
            }
            Kind::IamPolicy => {
                after["description"] = json!(format!(
                    "{} (revised)",
                    before["description"].as_str().unwrap_or_default()
                ));
            }
            Kind::Instance => {
                after["instance_type"] = json!(self.rng.pick(INSTANCE_TYPES));
            }
        }
        after
    }

    /// A change of the attribute that forces a new resource.
    fn replace(&mut self, kind: Kind, before: &Value) -> Value {
        let mut after = before.clone();
        let key = kind.forces_new();
        let new_value = match kind {
            Kind::Instance => json!(self.rng.pick(AMIS)),
            _ => json!(format!(
                "{}-v{}",
                before[key].as_str().unwrap_or_default(),
                2 + self.rng.below(5)
            )),
        };
        after[key] = new_value;
        after
    }

    /// Takes the computed attributes out of `after` where apply decides them, and
    /// returns the matching `after_unknown` markers.
    fn unknowns(&mut self, kind: Kind, act: Act, i: usize, mut after: Value) -> (Value, Value) {
        let mut unknown = serde_json::Map::new();
        let Some(object) = after.as_object_mut() else {
            return (after, json!({}));
        };
        match act {
            Act::Create | Act::ReplaceDestroyFirst | Act::ReplaceCreateFirst => {
                for key in kind.computed() {
                    object.remove(*key);
                    unknown.insert((*key).to_string(), json!(true));
                }
                unknown.insert("tags_all".to_string(), json!(true));
                let derived = match kind {
                    Kind::Instance if i % 4 == 1 => Some("availability_zone"),
                    Kind::SecurityGroup if i % 16 == 5 => Some("ingress"),
                    _ => None,
                };
                if let Some(key) = derived {
                    object.remove(key);
                    unknown.insert(key.to_string(), json!(true));
                }
            }
            Act::Update if kind == Kind::Instance && self.rng.chance(40) => {
                object.remove("public_ip");
                unknown.insert("public_ip".to_string(), json!(true));
            }
            Act::Update | Act::Delete => {}
        }
        (after, Value::Object(unknown))
    }
}

fn ingress_rule(port: u64, cidr: &str, description: &str) -> Value {
    json!({
        "from_port": port,
        "to_port": port,
        "protocol": if port == 0 { "-1" } else { "tcp" },
        "cidr_blocks": [cidr],
        "ipv6_cidr_blocks": [],
        "prefix_list_ids": [],
        "security_groups": [],
        "self": false,
        "description": description,
    })
}

fn opens_ssh(attributes: &Value) -> bool {
    attributes["ingress"].as_array().is_some_and(|rules| {
        rules.iter().any(|rule| {
            rule["from_port"] == json!(22)
                && rule["cidr_blocks"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c == "0.0.0.0/0"))
        })
    })
}

fn sensitive_markers(kind: Kind, sensitive: bool) -> Value {
    match (sensitive, kind) {
        (false, _) => json!({}),
        (true, Kind::Instance) => json!({"user_data": true}),
        (true, _) => json!({"tags": {"owner-email": true}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provkey_plan::{Action, Plan, PlanSource, ReplaceOrder};

    #[test]
    fn planned_values_hold_every_resource_left_after_apply() {
        let generated = generate(400, 11);
        let plan: Value = serde_json::from_str(&generated.json).unwrap();
        let changes = plan["resource_changes"].as_array().unwrap();
        let mut want: Vec<&str> = changes
            .iter()
            .filter(|rc| !rc["change"]["after"].is_null())
            .map(|rc| rc["address"].as_str().unwrap())
            .collect();
        let root = &plan["planned_values"]["root_module"];
        let mut got: Vec<&str> = root["resources"]
            .as_array()
            .unwrap()
            .iter()
            .chain(
                root["child_modules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|m| m["resources"].as_array().unwrap()),
            )
            .map(|r| r["address"].as_str().unwrap())
            .collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(
            got.len(),
            generated.counts.total() - generated.counts.delete
        );
        for module in root["child_modules"].as_array().unwrap() {
            let prefix = format!("{}.", module["address"].as_str().unwrap());
            for r in module["resources"].as_array().unwrap() {
                assert!(r["address"].as_str().unwrap().starts_with(&prefix));
            }
        }
        // The values are the planned `after`.
        let first = changes
            .iter()
            .find(|rc| rc["module_address"].is_null() && !rc["change"]["after"].is_null())
            .unwrap();
        let planned = root["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == first["address"])
            .unwrap();
        assert_eq!(planned["values"], first["change"]["after"]);
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = generate(500, 7);
        let b = generate(500, 7);
        assert_eq!(a.json, b.json);
        assert_eq!(a.counts, b.counts);
        assert_ne!(a.json, generate(500, 8).json);
        // A prefix of a larger plan draws the same numbers.
        let first = generate(3, DEFAULT_SEED);
        let more = generate(4, DEFAULT_SEED);
        let changes_of_first = first.json.find(r#"],"planned_values""#).unwrap();
        assert!(more.json.starts_with(&first.json[..changes_of_first]));
    }

    #[test]
    fn provkey_reads_it_with_the_expected_counts() {
        for n in [0, 1, 10, 2_000] {
            let generated = generate(n, DEFAULT_SEED);
            let counts = generated.counts;
            assert_eq!(counts.total(), n);
            let plan = Plan::from_json(&generated.json).unwrap();
            assert_eq!(plan.source, PlanSource::Terraform);
            assert_eq!(plan.source_version, "1.2");
            assert_eq!(plan.changes.len(), n);
            let of = |name: &str| {
                plan.action_counts()
                    .into_iter()
                    .find(|(action, _)| *action == name)
                    .map_or(0, |(_, count)| count)
            };
            assert_eq!(of("create"), counts.create);
            assert_eq!(of("update"), counts.update);
            assert_eq!(of("replace"), counts.replace());
            assert_eq!(of("destroy"), counts.delete);
            let order = |o: ReplaceOrder| {
                plan.changes
                    .iter()
                    .filter(|c| matches!(&c.action, Action::Replace(r) if r.order == o))
                    .count()
            };
            assert_eq!(
                order(ReplaceOrder::DestroyBeforeCreate),
                counts.replace_destroy_first
            );
            assert_eq!(
                order(ReplaceOrder::CreateBeforeDestroy),
                counts.replace_create_first
            );
            let in_module = plan
                .changes
                .iter()
                .filter(|c| !c.module_path.is_empty())
                .count();
            assert_eq!(in_module, counts.in_module);
            let sensitive = plan
                .changes
                .iter()
                .filter(|c| !c.before_sensitive.is_empty() || !c.after_sensitive.is_empty())
                .count();
            assert_eq!(sensitive, counts.sensitive);
        }
    }

    #[test]
    fn the_mix_is_roughly_as_specified() {
        let counts = generate(10_000, DEFAULT_SEED).counts;
        let share = |n: usize| n * 100 / counts.total();
        assert!((57..=63).contains(&share(counts.create)), "{counts:?}");
        assert!((22..=28).contains(&share(counts.update)), "{counts:?}");
        assert!((8..=12).contains(&share(counts.replace())), "{counts:?}");
        assert!((3..=7).contains(&share(counts.delete)), "{counts:?}");
        assert!(counts.replace_destroy_first > 0 && counts.replace_create_first > 0);
        assert!(
            counts.in_module > 2_000 && counts.sensitive > 100 && counts.open_ssh > 50,
            "{counts:?}"
        );
    }

    #[test]
    fn shapes_policies_look_at_are_there() {
        let plan = Plan::from_json(&generate(400, DEFAULT_SEED).json).unwrap();
        let creates_instance = plan
            .changes
            .iter()
            .find(|c| c.resource_type == "aws_instance" && c.action == Action::Create)
            .unwrap();
        assert!(creates_instance.after_at("/id").is_unknown());
        assert!(creates_instance.after_at("/ami").as_str().is_some());
        let iam = plan
            .changes
            .iter()
            .find(|c| c.resource_type == "aws_iam_policy" && c.after.is_some())
            .unwrap();
        let document = iam.after_at("/policy").as_str().unwrap();
        assert!(serde_json::from_str::<Value>(document).unwrap()["Statement"].is_array());
        let sg = plan
            .changes
            .iter()
            .find(|c| c.resource_type == "aws_security_group" && c.after.is_some())
            .unwrap();
        assert!(sg.after_at("/ingress/0/from_port").known().is_some());
        assert!(
            plan.changes
                .iter()
                .any(|c| c.address.contains("module.app[\"blue\"]."))
        );
        assert!(
            plan.changes
                .iter()
                .any(|c| c.address.ends_with(']') && c.module_path.is_empty())
        );
    }
}
