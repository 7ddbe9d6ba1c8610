//! The stock policies: the components built from the `policies/` workspace for
//! `wasm32-wasip2` by this crate's build script and embedded in the host binary.
//!
//! Each one exports `provkey:plan/policy@0.1.0`; its id is its crate's name and
//! equals the id its metadata declares.

/// One embedded stock policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockPolicy {
    /// The policy's id, as its metadata declares it: `immutable`.
    pub id: &'static str,
    /// The component (a `wasm32-wasip2` release build).
    pub bytes: &'static [u8],
}

/// One embedded stock planner (built from `policies/planners/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockPlanner {
    /// The planner's id, as its metadata declares it: `provkey-planner`.
    pub id: &'static str,
    /// The component (a `wasm32-wasip2` release build), exporting
    /// `provkey:plan/planner@0.1.0`.
    pub bytes: &'static [u8],
}

/// The id of the planner `provkey plan` runs by default.
pub const DEFAULT_PLANNER: &str = "provkey-planner";

// `pub static STOCK_POLICIES: &[StockPolicy]` and `pub static STOCK_PLANNERS:
// &[StockPlanner]`, sorted by id, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/gen.rs"));

/// The stock policy with this id.
pub fn find(id: &str) -> Option<&'static StockPolicy> {
    STOCK_POLICIES.iter().find(|policy| policy.id == id)
}

/// The stock planner with this id.
pub fn find_planner(id: &str) -> Option<&'static StockPlanner> {
    STOCK_PLANNERS.iter().find(|planner| planner.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_immutable_policy_as_a_component() {
        let ids: Vec<&str> = STOCK_POLICIES.iter().map(|p| p.id).collect();
        assert!(ids.contains(&"immutable"), "{ids:?}");
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "sorted and unique: {ids:?}"
        );
        let immutable = find("immutable").unwrap();
        // The component binary header: magic, then version 0x0d and layer 1.
        assert_eq!(&immutable.bytes[..8], b"\0asm\x0d\0\x01\0");
        assert!(find("nope").is_none());
    }

    #[test]
    fn embeds_the_stock_planner_apart_from_the_policies() {
        let planner = find_planner(DEFAULT_PLANNER).unwrap();
        assert_eq!(&planner.bytes[..8], b"\0asm\x0d\0\x01\0");
        assert!(find(DEFAULT_PLANNER).is_none());
        assert!(find_planner("immutable").is_none());
    }
}
