//! The `no-remote-shell` stock policy: no SSH, RDP or other remote-shell port is
//! open to anywhere, because a running environment must not be changed by hand.
//!
//! Read, on every change that creates or updates a managed resource:
//!
//! - AWS: `aws_security_group` (inline `ingress` blocks), `aws_security_group_rule`
//!   (`type = "ingress"`), `aws_vpc_security_group_ingress_rule`; protocol `tcp`,
//!   `6`, `-1` or `all`; a port range `from_port`..`to_port` (all ports for `-1`);
//!   sources `cidr_blocks`, `ipv6_cidr_blocks`, `cidr_ipv4`, `cidr_ipv6`.
//! - Azure: `azurerm_network_security_group` (inline `security_rule` blocks) and
//!   `azurerm_network_security_rule`; `direction = "Inbound"`, `access = "Allow"`,
//!   protocol `Tcp` or `*`; `destination_port_range(s)` (`22`, `20-25`, `*`);
//!   `source_address_prefix(es)`.
//! - Google: `google_compute_firewall` with direction `INGRESS` (the default), not
//!   `disabled`; `allow` blocks with protocol `tcp`, `6` or `all` and their `ports`
//!   (none means all); `source_ranges` (no source ranges, tags or service accounts
//!   means `0.0.0.0/0`, as Google applies it).
//!
//! A rule open to one of `open_sources` on a port of `ports` is a hard-mandatory
//! finding. A rule that could be one but whose source, port or protocol is known
//! only after apply is reported as `remote-shell-undecidable`, never passed.
//!
//! Configuration (optional, `{}` by default; schema in `config.schema.json`):
//!
//! - `ports`: the remote-shell ports, default `[22, 23, 3389, 5985, 5986]` (SSH,
//!   telnet, RDP, WinRM over HTTP and HTTPS).
//! - `open_sources`: the sources that mean anywhere, default `["0.0.0.0/0", "::/0",
//!   "*", "Internet", "Any"]` (compared without case).
//! - `ignore_addresses`: resource addresses never checked (for example a bastion's
//!   security group that is reviewed on its own).

use provkey_sdk::prelude::*;
use provkey_sdk::serde;

/// A remote-shell port open to anywhere.
pub const REMOTE_SHELL_OPEN: Rule = Rule::new(
    "remote-shell-open",
    "No SSH, RDP or other remote-shell port is open to anywhere.",
)
.severity(Severity::Critical)
.enforcement(Enforcement::HardMandatory);

/// A rule that cannot be decided because its input is known only after apply.
pub const REMOTE_SHELL_UNDECIDABLE: Rule = Rule::new(
    "remote-shell-undecidable",
    "An ingress rule whose source, port or protocol is known only after apply may open a \
     remote shell to anywhere.",
)
.severity(Severity::High)
.enforcement(Enforcement::SoftMandatory);

/// The configuration's JSON Schema.
pub const CONFIG_SCHEMA: &str = include_str!("../config.schema.json");

/// The default remote-shell ports and their names.
pub const DEFAULT_PORTS: &[(u16, &str)] = &[
    (22, "SSH"),
    (23, "telnet"),
    (3389, "RDP"),
    (5985, "WinRM"),
    (5986, "WinRM over HTTPS"),
];

/// The default sources that mean anywhere.
pub const DEFAULT_OPEN_SOURCES: &[&str] = &["0.0.0.0/0", "::/0", "*", "Internet", "Any"];

#[derive(serde::Deserialize, Default)]
#[serde(crate = "provkey_sdk::serde", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    ports: Option<Vec<u16>>,
    #[serde(default)]
    open_sources: Option<Vec<String>>,
    #[serde(default)]
    ignore_addresses: Vec<String>,
}

/// The policy.
pub struct NoRemoteShell;

impl Policy for NoRemoteShell {
    fn metadata() -> Metadata {
        Metadata::new(
            "no-remote-shell",
            env!("CARGO_PKG_VERSION"),
            "Refuses SSH, RDP and other remote-shell ingress from anywhere in AWS security \
             groups, Azure network security rules and Google firewalls.",
        )
        .rules(&[REMOTE_SHELL_OPEN, REMOTE_SHELL_UNDECIDABLE])
        .config_schema(CONFIG_SCHEMA)
    }

    fn evaluate(plan: &Plan, config: &Config) -> Result<Vec<Finding>, Error> {
        let settings: Settings = config.parse()?;
        let ports = settings
            .ports
            .unwrap_or_else(|| DEFAULT_PORTS.iter().map(|(p, _)| *p).collect());
        if ports.is_empty() {
            return Err(Error::invalid_config(
                "field `ports`: give at least one port (to switch the policy off, do not run it)",
            ));
        }
        let open_sources = settings
            .open_sources
            .unwrap_or_else(|| DEFAULT_OPEN_SOURCES.iter().map(|s| s.to_string()).collect());
        let context = Context {
            ports,
            open_sources,
        };
        let mut findings = Vec::new();
        for change in plan.managed_changes() {
            if !(change.action.creates() || change.action.is_update())
                || settings.ignore_addresses.contains(&change.address)
            {
                continue;
            }
            let rules = ingress_rules(change);
            findings.extend(rules.iter().filter_map(|rule| context.judge(change, rule)));
        }
        Ok(findings)
    }
}

/// A value as read from the plan.
#[derive(Debug, Clone, PartialEq)]
enum Known<T> {
    Yes(T),
    /// Known only after apply: the pointer that is unknown.
    Unknown(String),
}

/// An inclusive port range.
type Ports = (u32, u32);

/// One ingress rule, provider-neutral.
#[derive(Debug)]
struct Ingress {
    /// The pointer of the rule (`/ingress/0`, or `` for a rule resource).
    at: String,
    /// Whether the protocol can carry a remote shell (TCP or all).
    tcp: Known<bool>,
    /// The attribute holding the sources, and the sources.
    source_attr: String,
    sources: Known<Vec<String>>,
    /// The attribute holding the ports, and the ranges.
    port_attr: String,
    ports: Known<Vec<Ports>>,
}

const ALL_PORTS: Ports = (0, 65535);

struct Context {
    ports: Vec<u16>,
    open_sources: Vec<String>,
}

impl Context {
    fn judge(&self, change: &ResourceChange, rule: &Ingress) -> Option<Finding> {
        let open = match &rule.sources {
            Known::Yes(sources) => Known::Yes(
                sources
                    .iter()
                    .filter(|s| self.open_sources.iter().any(|o| o.eq_ignore_ascii_case(s)))
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            Known::Unknown(at) => Known::Unknown(at.clone()),
        };
        let hit = match &rule.ports {
            Known::Yes(ranges) => Known::Yes(
                self.ports
                    .iter()
                    .copied()
                    .filter(|p| {
                        ranges
                            .iter()
                            .any(|(lo, hi)| (*lo..=*hi).contains(&u32::from(*p)))
                    })
                    .collect::<Vec<_>>(),
            ),
            Known::Unknown(at) => Known::Unknown(at.clone()),
        };
        // Decided safe as soon as any known part rules it out.
        if matches!(rule.tcp, Known::Yes(false))
            || matches!(&open, Known::Yes(v) if v.is_empty())
            || matches!(&hit, Known::Yes(v) if v.is_empty())
        {
            return None;
        }
        let unknown = [&rule.tcp]
            .into_iter()
            .filter_map(|k| match k {
                Known::Unknown(at) => Some(at.clone()),
                Known::Yes(_) => None,
            })
            .chain(match &open {
                Known::Unknown(at) => Some(at.clone()),
                Known::Yes(_) => None,
            })
            .chain(match &hit {
                Known::Unknown(at) => Some(at.clone()),
                Known::Yes(_) => None,
            })
            .collect::<Vec<_>>();
        let place = if rule.at.is_empty() {
            String::new()
        } else {
            format!(" (rule `{}`)", rule.at)
        };
        if let Some(first) = unknown.first() {
            let names: Vec<String> = unknown.iter().map(|u| format!("`{u}`")).collect();
            return Some(
                Finding::new(&REMOTE_SHELL_UNDECIDABLE, change)
                    .attribute(first.clone())
                    .message(format!(
                        "`{}`{place}: cannot tell whether a remote-shell port is open to \
                         anywhere, because {} {} known only after apply",
                        change.address,
                        names.join(", "),
                        if names.len() == 1 { "is" } else { "are" }
                    ))
                    .remediation(
                        "make the rule's sources and ports known at plan time (literal CIDR \
                         ranges and ports), so that the plan can be checked",
                    ),
            );
        }
        let (Known::Yes(open), Known::Yes(hit)) = (open, hit) else {
            return None;
        };
        let source = if change.contains_sensitive(&rule.source_attr) {
            "(sensitive)".to_string()
        } else {
            open.join("`, `")
        };
        let ports: Vec<String> = hit.iter().map(|p| port_name(*p)).collect();
        Some(
            Finding::new(&REMOTE_SHELL_OPEN, change)
                .attribute(rule.source_attr.clone())
                .message(format!(
                    "`{}`{place} opens {} to `{source}` (ports from `{}`)",
                    change.address,
                    ports.join(", "),
                    rule.port_attr
                ))
                .remediation(
                    "do not open remote shells to the world: allow only a bastion's or a VPN's \
                     address range, or better, change the environment by replacing it from a \
                     sealed plan instead of logging in",
                ),
        )
    }
}

fn port_name(port: u16) -> String {
    match DEFAULT_PORTS.iter().find(|(p, _)| *p == port) {
        Some((_, name)) => format!("port {port} ({name})"),
        None => format!("port {port}"),
    }
}

/// The ingress rules a change defines, whatever the provider.
fn ingress_rules(change: &ResourceChange) -> Vec<Ingress> {
    match change.resource_type.as_str() {
        "aws_security_group" => blocks(change, "/ingress")
            .into_iter()
            .map(|at| aws_rule(change, &at, "cidr_blocks", "ipv6_cidr_blocks"))
            .collect(),
        "aws_security_group_rule" => match change.after_at("/type") {
            Attr::Known(t) if t.as_str() != Some("ingress") => Vec::new(),
            _ => vec![aws_rule(change, "", "cidr_blocks", "ipv6_cidr_blocks")],
        },
        "aws_vpc_security_group_ingress_rule" => {
            let mut rule = aws_rule(change, "", "cidr_ipv4", "cidr_ipv6");
            rule.tcp = aws_protocol(change, "/ip_protocol");
            if matches!(change.after_at("/ip_protocol").as_str(), Some("-1" | "all")) {
                rule.ports = Known::Yes(vec![ALL_PORTS]);
            }
            vec![rule]
        }
        "azurerm_network_security_group" => blocks(change, "/security_rule")
            .into_iter()
            .filter_map(|at| azure_rule(change, &at))
            .collect(),
        "azurerm_network_security_rule" => azure_rule(change, "").into_iter().collect(),
        "google_compute_firewall" => google_rules(change),
        _ => Vec::new(),
    }
}

/// The pointers of a block list's elements; an unknown list is one unknown rule.
fn blocks(change: &ResourceChange, at: &str) -> Vec<String> {
    match change.after_at(at) {
        Attr::Known(Value::Array(items)) => (0..items.len()).map(|i| format!("{at}/{i}")).collect(),
        Attr::Unknown => vec![at.to_string()],
        _ => Vec::new(),
    }
}

/// Strings at the given attributes, joined; unknown if any is.
fn strings(change: &ResourceChange, paths: &[String]) -> Known<Vec<String>> {
    let mut out = Vec::new();
    for path in paths {
        match change.after_at(path) {
            Attr::Unknown => return Known::Unknown(path.clone()),
            Attr::Absent => {}
            Attr::Known(Value::String(s)) => {
                if !s.is_empty() {
                    out.push(s.clone());
                }
            }
            Attr::Known(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        Value::Null => return Known::Unknown(format!("{path}/{i}")),
                        _ => {}
                    }
                }
            }
            Attr::Known(_) => {}
        }
    }
    Known::Yes(out)
}

fn aws_protocol(change: &ResourceChange, path: &str) -> Known<bool> {
    match change.after_at(path) {
        Attr::Unknown => Known::Unknown(path.to_string()),
        Attr::Absent => Known::Yes(true),
        Attr::Known(v) => {
            let p = v.as_str().map(str::to_ascii_lowercase).unwrap_or_default();
            Known::Yes(matches!(p.as_str(), "tcp" | "6" | "-1" | "all"))
        }
    }
}

fn aws_rule(change: &ResourceChange, at: &str, v4: &str, v6: &str) -> Ingress {
    if change.is_unknown(at) && !at.is_empty() {
        return unknown_rule(at);
    }
    let source_paths = [format!("{at}/{v4}"), format!("{at}/{v6}")];
    let sources = strings(change, &source_paths);
    let from = format!("{at}/from_port");
    let to = format!("{at}/to_port");
    let tcp = aws_protocol(change, &format!("{at}/protocol"));
    let all = matches!(
        change.after_at(&format!("{at}/protocol")).as_str(),
        Some("-1" | "all")
    );
    let ports = if all {
        Known::Yes(vec![ALL_PORTS])
    } else {
        match (change.after_at(&from), change.after_at(&to)) {
            (Attr::Unknown, _) => Known::Unknown(from),
            (_, Attr::Unknown) => Known::Unknown(to),
            (Attr::Known(f), Attr::Known(t)) => match (number(f), number(t)) {
                (Some(f), Some(t)) => Known::Yes(vec![(f, t)]),
                _ => Known::Yes(Vec::new()),
            },
            _ => Known::Yes(Vec::new()),
        }
    };
    Ingress {
        at: at.to_string(),
        tcp,
        source_attr: source_paths[0].clone(),
        sources,
        port_attr: format!("{at}/from_port"),
        ports,
    }
}

fn number(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn unknown_rule(at: &str) -> Ingress {
    Ingress {
        at: at.to_string(),
        tcp: Known::Unknown(at.to_string()),
        source_attr: at.to_string(),
        sources: Known::Unknown(at.to_string()),
        port_attr: at.to_string(),
        ports: Known::Unknown(at.to_string()),
    }
}

/// Port ranges as Azure and Google write them: `22`, `20-25`, `*` (all).
fn port_ranges(values: &[String]) -> Vec<Ports> {
    values
        .iter()
        .filter_map(|v| {
            let v = v.trim();
            if v == "*" {
                return Some(ALL_PORTS);
            }
            match v.split_once('-') {
                Some((lo, hi)) => Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?)),
                None => v.parse().ok().map(|p| (p, p)),
            }
        })
        .collect()
}

fn azure_rule(change: &ResourceChange, at: &str) -> Option<Ingress> {
    if change.is_unknown(at) && !at.is_empty() {
        return Some(unknown_rule(at));
    }
    let text = |field: &str| change.after_at(&format!("{at}/{field}"));
    let is = |field: &str, want: &str| match text(field) {
        Attr::Known(v) => v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(want)),
        _ => false,
    };
    // Known outbound or deny rules cannot open anything.
    if (!text("direction").is_unknown() && !is("direction", "Inbound"))
        || (!text("access").is_unknown() && !is("access", "Allow"))
    {
        return None;
    }
    let protocol_at = format!("{at}/protocol");
    let tcp = match change.after_at(&protocol_at) {
        Attr::Unknown => Known::Unknown(protocol_at),
        Attr::Absent => Known::Yes(true),
        Attr::Known(v) => Known::Yes(matches!(
            v.as_str().map(str::to_ascii_lowercase).as_deref(),
            Some("tcp" | "*" | "any")
        )),
    };
    let tcp = match (text("direction"), text("access")) {
        (Attr::Unknown, _) => Known::Unknown(format!("{at}/direction")),
        (_, Attr::Unknown) => Known::Unknown(format!("{at}/access")),
        _ => tcp,
    };
    let source_paths = [
        format!("{at}/source_address_prefix"),
        format!("{at}/source_address_prefixes"),
    ];
    let port_paths = [
        format!("{at}/destination_port_range"),
        format!("{at}/destination_port_ranges"),
    ];
    let ports = match strings(change, &port_paths) {
        Known::Yes(values) => Known::Yes(port_ranges(&values)),
        Known::Unknown(p) => Known::Unknown(p),
    };
    let sources = strings(change, &source_paths);
    let source_attr = match change.after_at(&source_paths[0]) {
        Attr::Known(Value::String(s)) if !s.is_empty() => source_paths[0].clone(),
        _ => source_paths[1].clone(),
    };
    let port_attr = match change.after_at(&port_paths[0]) {
        Attr::Known(Value::String(s)) if !s.is_empty() => port_paths[0].clone(),
        _ => port_paths[1].clone(),
    };
    Some(Ingress {
        at: at.to_string(),
        tcp,
        source_attr,
        sources,
        port_attr,
        ports,
    })
}

fn google_rules(change: &ResourceChange) -> Vec<Ingress> {
    match change.after_at("/direction").as_str() {
        Some(d) if !d.eq_ignore_ascii_case("INGRESS") => return Vec::new(),
        _ => {}
    }
    if change.after_at("/disabled").known() == Some(&Value::Bool(true)) {
        return Vec::new();
    }
    let ranges = "/source_ranges".to_string();
    let sources = match strings(change, std::slice::from_ref(&ranges)) {
        Known::Yes(list) if list.is_empty() => {
            // Without any source filter Google applies `0.0.0.0/0`.
            let filtered = ["/source_tags", "/source_service_accounts"]
                .iter()
                .map(|p| change.after_at(p))
                .any(|a| match a {
                    Attr::Known(Value::Array(items)) => !items.is_empty(),
                    Attr::Unknown => true,
                    _ => false,
                });
            if filtered {
                Known::Yes(Vec::new())
            } else {
                Known::Yes(vec!["0.0.0.0/0".to_string()])
            }
        }
        other => other,
    };
    blocks(change, "/allow")
        .into_iter()
        .map(|at| {
            if change.is_unknown(&at) {
                return unknown_rule(&at);
            }
            let protocol_at = format!("{at}/protocol");
            let tcp = match change.after_at(&protocol_at) {
                Attr::Unknown => Known::Unknown(protocol_at),
                Attr::Absent => Known::Yes(false),
                Attr::Known(v) => Known::Yes(matches!(
                    v.as_str().map(str::to_ascii_lowercase).as_deref(),
                    Some("tcp" | "6" | "all")
                )),
            };
            let port_at = format!("{at}/ports");
            let ports = match strings(change, std::slice::from_ref(&port_at)) {
                Known::Yes(list) if list.is_empty() => Known::Yes(vec![ALL_PORTS]),
                Known::Yes(list) => Known::Yes(port_ranges(&list)),
                Known::Unknown(p) => Known::Unknown(p),
            };
            Ingress {
                at,
                tcp,
                source_attr: ranges.clone(),
                sources: sources.clone(),
                port_attr: port_at,
                ports,
            }
        })
        .collect()
}

provkey_sdk::export_policy!(NoRemoteShell);

#[cfg(test)]
mod tests {
    use provkey_sdk::testing::{self, change};

    use super::*;

    fn run(plan: &Plan, config: &str) -> Result<Vec<Finding>, Error> {
        testing::evaluate::<NoRemoteShell>(plan, config)
    }

    fn found(findings: &[Finding]) -> Vec<(&str, &str, &str)> {
        findings
            .iter()
            .map(|f| {
                (
                    f.rule.as_str(),
                    f.address.as_deref().unwrap_or_default(),
                    f.attribute.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn sg(address: &str, from: u32, to: u32, cidr: &str) -> testing::TestChange {
        change(address, Action::Create).after(json!({"ingress": [
            {"protocol": "tcp", "from_port": from, "to_port": to, "cidr_blocks": [cidr],
             "ipv6_cidr_blocks": []}
        ]}))
    }

    #[test]
    fn metadata_is_well_formed() {
        testing::check_metadata::<NoRemoteShell>();
    }

    #[test]
    fn aws_security_groups_and_rules() {
        let plan = testing::plan_of([
            sg("aws_security_group.ssh", 22, 22, "0.0.0.0/0"),
            sg("aws_security_group.range", 20, 25, "0.0.0.0/0"),
            sg("aws_security_group.https", 443, 443, "0.0.0.0/0"),
            sg("aws_security_group.private", 22, 22, "10.0.0.0/16"),
            change("aws_security_group.all", Action::Create).after(json!({"ingress": [
                {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [],
                 "ipv6_cidr_blocks": ["::/0"]}
            ]})),
            change("aws_security_group_rule.rdp", Action::Create).after(json!({
                "type": "ingress", "protocol": "tcp", "from_port": 3389, "to_port": 3389,
                "cidr_blocks": ["0.0.0.0/0"]
            })),
            change("aws_security_group_rule.egress", Action::Create).after(json!({
                "type": "egress", "protocol": "tcp", "from_port": 22, "to_port": 22,
                "cidr_blocks": ["0.0.0.0/0"]
            })),
            change("aws_vpc_security_group_ingress_rule.v", Action::Create).after(json!({
                "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_ipv4": "0.0.0.0/0"
            })),
            change("aws_security_group.udp", Action::Create).after(json!({"ingress": [
                {"protocol": "udp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}
            ]})),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            found(&findings),
            [
                (
                    "remote-shell-open",
                    "aws_security_group.ssh",
                    "/ingress/0/cidr_blocks"
                ),
                (
                    "remote-shell-open",
                    "aws_security_group.range",
                    "/ingress/0/cidr_blocks"
                ),
                (
                    "remote-shell-open",
                    "aws_security_group.all",
                    "/ingress/0/cidr_blocks"
                ),
                (
                    "remote-shell-open",
                    "aws_security_group_rule.rdp",
                    "/cidr_blocks"
                ),
                (
                    "remote-shell-open",
                    "aws_vpc_security_group_ingress_rule.v",
                    "/cidr_ipv4"
                ),
            ]
        );
        assert_eq!(
            findings[1].message,
            "`aws_security_group.range` (rule `/ingress/0`) opens port 22 (SSH), port 23 \
             (telnet) to `0.0.0.0/0` (ports from `/ingress/0/from_port`)"
        );
        assert!(findings[2].message.contains("`::/0`"));
    }

    #[test]
    fn azure_rules() {
        let plan = testing::plan_of([
            change("azurerm_network_security_rule.any", Action::Create).after(json!({
                "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                "destination_port_ranges": ["22", "27"], "source_address_prefix": "Any"
            })),
            change("azurerm_network_security_rule.deny", Action::Create).after(json!({
                "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
                "destination_port_range": "*", "source_address_prefix": "*"
            })),
            change("azurerm_network_security_group.g", Action::Create).after(json!({
                "security_rule": [
                    {"direction": "Inbound", "access": "Allow", "protocol": "*",
                     "destination_port_range": "3000-4000", "source_address_prefix": "Internet"},
                    {"direction": "Outbound", "access": "Allow", "protocol": "*",
                     "destination_port_range": "22", "source_address_prefix": "*"}
                ]
            })),
        ]);
        assert_eq!(
            found(&run(&plan, "{}").unwrap()),
            [
                (
                    "remote-shell-open",
                    "azurerm_network_security_rule.any",
                    "/source_address_prefix"
                ),
                (
                    "remote-shell-open",
                    "azurerm_network_security_group.g",
                    "/security_rule/0/source_address_prefix"
                ),
            ]
        );
    }

    #[test]
    fn google_firewalls() {
        let plan = testing::plan_of([
            change("google_compute_firewall.ssh", Action::Create).after(json!({
                "allow": [{"protocol": "icmp", "ports": []}, {"protocol": "tcp", "ports": ["22"]}],
                "source_ranges": ["0.0.0.0/0"]
            })),
            change("google_compute_firewall.implicit", Action::Create).after(json!({
                "allow": [{"protocol": "all", "ports": []}]
            })),
            change("google_compute_firewall.tagged", Action::Create).after(json!({
                "allow": [{"protocol": "tcp", "ports": ["22"]}], "source_tags": ["bastion"]
            })),
            change("google_compute_firewall.egress", Action::Create).after(json!({
                "direction": "EGRESS", "allow": [{"protocol": "tcp", "ports": ["22"]}],
                "destination_ranges": ["0.0.0.0/0"]
            })),
        ]);
        assert_eq!(
            found(&run(&plan, "{}").unwrap()),
            [
                (
                    "remote-shell-open",
                    "google_compute_firewall.ssh",
                    "/source_ranges"
                ),
                (
                    "remote-shell-open",
                    "google_compute_firewall.implicit",
                    "/source_ranges"
                ),
            ]
        );
    }

    #[test]
    fn unknown_inputs_are_undecidable() {
        let plan = testing::plan_of([
            change("aws_security_group_rule.r", Action::Create)
                .after(
                    json!({"type": "ingress", "protocol": "tcp", "from_port": 22,
                              "to_port": 22}),
                )
                .unknown("/cidr_blocks"),
            change("aws_security_group_rule.known_safe", Action::Create)
                .after(
                    json!({"type": "ingress", "protocol": "tcp", "from_port": 443,
                              "to_port": 443}),
                )
                .unknown("/cidr_blocks"),
            change("aws_security_group.g", Action::Create)
                .after(json!({}))
                .unknown("/ingress"),
        ]);
        let findings = run(&plan, "{}").unwrap();
        assert_eq!(
            found(&findings),
            [
                (
                    "remote-shell-undecidable",
                    "aws_security_group_rule.r",
                    "/cidr_blocks"
                ),
                (
                    "remote-shell-undecidable",
                    "aws_security_group.g",
                    "/ingress"
                ),
            ]
        );
        assert!(findings[0].message.contains("known only after apply"));
    }

    #[test]
    fn configuration() {
        let plan = testing::plan_of([
            sg("aws_security_group.db", 5432, 5432, "0.0.0.0/0"),
            sg("aws_security_group.ssh", 22, 22, "203.0.113.0/24"),
        ]);
        assert_eq!(run(&plan, "{}").unwrap(), []);
        let config = r#"{"ports": [5432, 22], "open_sources": ["0.0.0.0/0", "203.0.113.0/24"],
                         "ignore_addresses": ["aws_security_group.db"]}"#;
        assert_eq!(
            found(&run(&plan, config).unwrap()),
            [(
                "remote-shell-open",
                "aws_security_group.ssh",
                "/ingress/0/cidr_blocks"
            )]
        );
        let err = |config| run(&plan, config).unwrap_err().message().to_string();
        assert!(err(r#"{"port": [22]}"#).contains("unknown field `port`"));
        assert!(err(r#"{"ports": [70000]}"#).starts_with("field `ports[0]`"));
        assert!(err(r#"{"ports": []}"#).starts_with("field `ports`"));
    }
}
