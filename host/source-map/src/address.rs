//! Terraform resource addresses: `module.net["eu"].module.sg.aws_security_group.web[0]`.

/// A resource address split into the module calls that lead to it and the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The names of the module calls from the root module, outermost first
    /// (instance keys dropped: every instance of a call is declared by one block).
    pub modules: Vec<String>,
    /// `resource` or `data`.
    pub mode: Mode,
    pub resource_type: String,
    pub name: String,
}

/// Whether the address names a managed resource or a data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Managed,
    Data,
}

impl Mode {
    /// The HCL block that declares it.
    pub fn block(self) -> &'static str {
        match self {
            Mode::Managed => "resource",
            Mode::Data => "data",
        }
    }
}

impl Address {
    /// Parses an address; `None` for anything that is not a resource address (a
    /// provkey plan's own addresses, an output, a malformed string).
    pub fn parse(address: &str) -> Option<Address> {
        let steps = steps(address)?;
        let mut steps = steps.into_iter().peekable();
        let mut modules = Vec::new();
        while steps.peek().is_some_and(|(name, _)| name == "module") {
            steps.next();
            let (call, _) = steps.next()?;
            modules.push(call);
        }
        let (first, first_key) = steps.next()?;
        let (mode, resource_type, name) = if first == "data" {
            if first_key {
                return None;
            }
            let (resource_type, key) = steps.next()?;
            if key {
                return None;
            }
            let (name, _) = steps.next()?;
            (Mode::Data, resource_type, name)
        } else {
            if first_key {
                return None;
            }
            let (name, _) = steps.next()?;
            (Mode::Managed, first, name)
        };
        if steps.next().is_some() || resource_type.is_empty() || name.is_empty() {
            return None;
        }
        Some(Address {
            modules,
            mode,
            resource_type,
            name,
        })
    }
}

/// Splits an address into its dot-separated names, each with whether an instance
/// key (`[0]`, `["a.b"]`) followed it. Keys may hold dots and brackets inside quotes.
fn steps(address: &str) -> Option<Vec<(String, bool)>> {
    let mut steps = Vec::new();
    let mut chars = address.chars().peekable();
    loop {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '.' || c == '[' {
                break;
            }
            if !(c.is_alphanumeric() || c == '_' || c == '-') {
                return None;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return None;
        }
        let mut keyed = false;
        if chars.peek() == Some(&'[') {
            chars.next();
            skip_key(&mut chars)?;
            keyed = true;
        }
        steps.push((name, keyed));
        match chars.next() {
            None => return Some(steps),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// Consumes an instance key after its `[`, through the closing `]`.
fn skip_key(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<()> {
    if chars.peek() == Some(&'"') {
        chars.next();
        loop {
            match chars.next()? {
                '\\' => {
                    chars.next()?;
                }
                '"' => break,
                _ => {}
            }
        }
        (chars.next()? == ']').then_some(())
    } else {
        let mut digits = 0;
        loop {
            match chars.next()? {
                ']' if digits > 0 => return Some(()),
                c if c.is_ascii_digit() => digits += 1,
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn parsed(address: &str) -> (Vec<String>, Mode, String, String) {
        let a = Address::parse(address).unwrap();
        (a.modules, a.mode, a.resource_type, a.name)
    }

    #[test]
    fn root_resources_and_data_sources() {
        assert_eq!(
            parsed("aws_instance.web"),
            (vec![], Mode::Managed, "aws_instance".into(), "web".into())
        );
        assert_eq!(
            parsed("aws_instance.web[3]"),
            (vec![], Mode::Managed, "aws_instance".into(), "web".into())
        );
        assert_eq!(
            parsed("data.aws_ami.ubuntu"),
            (vec![], Mode::Data, "aws_ami".into(), "ubuntu".into())
        );
    }

    #[test]
    fn module_paths_with_keys_holding_dots_and_brackets() {
        assert_eq!(
            parsed(r#"module.net["eu.west[1]"].module.sg[0].terraform_data.rule["a\"b"]"#),
            (
                vec!["net".to_string(), "sg".to_string()],
                Mode::Managed,
                "terraform_data".into(),
                "rule".into()
            )
        );
    }

    #[test]
    fn what_is_not_a_resource_address() {
        for bad in [
            "",
            "web",
            "module.net",
            "aws_instance.web.extra",
            "aws_instance.web[",
            "aws_instance.web[x]",
            "aws_instance.web[\"open",
            "data.aws_ami",
            "a b.c",
        ] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
    }
}
