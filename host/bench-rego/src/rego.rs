//! regorus (the Rust implementation of OPA's Rego) running `stock.rego`.

use crate::findings::Key;

/// The benchmark's Rego (kept next to the harness, in host/bench/rego/).
pub const REGO: &str = include_str!("../../bench/rego/stock.rego");

/// A regorus engine with the benchmark's rules parsed once; the input is replaced
/// on every evaluation.
pub struct Rego {
    engine: regorus::Engine,
}

/// Why regorus failed.
#[derive(Debug)]
pub struct RegoError(pub String);

impl std::fmt::Display for RegoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RegoError {}

fn err(e: impl std::fmt::Display) -> RegoError {
    RegoError(e.to_string())
}

impl Rego {
    /// Parses the benchmark's Rego.
    pub fn new() -> Result<Rego, RegoError> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("stock.rego".to_string(), REGO.to_string())
            .map_err(err)?;
        Ok(Rego { engine })
    }

    /// Evaluates `data.tf.deny` over the plan's JSON text: parse + evaluate.
    pub fn check(&mut self, text: &str) -> Result<Vec<Key>, RegoError> {
        self.engine.set_input_json(text).map_err(err)?;
        let deny = self
            .engine
            .eval_rule("data.tf.deny".to_string())
            .map_err(err)?;
        let set = deny.as_set().map_err(err)?;
        let mut keys = Vec::with_capacity(set.len());
        for finding in set.iter() {
            let rule = finding["rule"].as_string().map_err(err)?;
            let address = finding["address"].as_string().map_err(err)?;
            keys.push((rule.to_string(), address.to_string()));
        }
        Ok(keys)
    }
}
