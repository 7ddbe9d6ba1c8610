//! The bounds every guest call runs under.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits on one evaluation. Each is independent: none of wasmtime's knobs covers
/// another's ground (epochs do not bound memory, the memory limiter does not bound
/// what a guest returns).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget for instantiating the guest and running the call.
    pub deadline: Duration,
    /// Total linear memory across all of the guest's memories.
    pub memory_bytes: usize,
    /// The size of what the guest may return (lifted strings and lists).
    pub output_bytes: usize,
    /// The wasm stack.
    pub stack_bytes: usize,
    /// Largest component accepted for compilation.
    pub component_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(2),
            memory_bytes: 256 << 20,
            output_bytes: 16 << 20,
            stack_bytes: 512 << 10,
            component_bytes: 128 << 20,
        }
    }
}

/// Which limit a guest hit; recorded by the limiter so the error can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Memory,
    Table,
}

/// Counts memory across every linear memory of the instance, so that a component
/// with many memories cannot multiply its budget.
#[derive(Debug)]
pub struct GuestLimiter {
    memory_limit: usize,
    memory_used: usize,
    pub(crate) hit: Option<LimitHit>,
}

/// Table elements are host memory too; a generous fixed cap keeps them bounded.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;
const MAX_INSTANCES: usize = 1_000;
const MAX_TABLES: usize = 1_000;
const MAX_MEMORIES: usize = 64;

/// What one component instance may hold in the instance pool: far more than the
/// toolchains here produce (a Python or JavaScript policy has a few core instances,
/// memories and tables), far less than the limiter's per-store caps, which bound
/// what a store may create; a component beyond these fails to instantiate.
pub(crate) const MAX_INSTANCES_PER_COMPONENT: u32 = 64;
pub(crate) const MAX_MEMORIES_PER_COMPONENT: u32 = 16;
pub(crate) const MAX_TABLES_PER_COMPONENT: u32 = 32;

impl GuestLimiter {
    pub fn new(memory_limit: usize) -> Self {
        GuestLimiter {
            memory_limit,
            memory_used: 0,
            hit: None,
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let used = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if used > self.memory_limit {
            self.hit = Some(LimitHit::Memory);
            // An error (not `Ok(false)`) traps the guest at once, instead of letting
            // it retry or abort with a message of its own.
            return Err(wasmtime::Error::msg("memory limit reached"));
        }
        self.memory_used = used;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.hit = Some(LimitHit::Table);
            return Err(wasmtime::Error::msg("table limit reached"));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
