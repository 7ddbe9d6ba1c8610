//! One wasmtime `Engine` per process, configured for untrusted guests.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store,
};

use crate::cache::{CacheOutcome, CompileCache};
use crate::error::RuntimeError;
use crate::guest::GuestState;
use crate::limits::Limits;

/// How often the epoch advances. Deadlines are rounded up to whole ticks, so a
/// guest is stopped at most one tick after its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Options for building a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    pub limits: Limits,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The engine, the linker that gives guests their (empty) WASI, and the cache.
/// Cheap to share: evaluations run on many threads at once.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    pub(crate) limits: Limits,
    cache: CompileCache,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Arc<Runtime>, RuntimeError> {
        // The pool reserves its address space when the engine is made (about 17 GiB
        // per slot), and even an instance mapped on demand reserves 4 GiB for each
        // memory. Under a limit on address space (`ulimit -v`) neither fits: memories
        // are then reserved at a size that does, and bounds-checked in code.
        let engine = match address_space_limit() {
            Some(limit) => {
                tracing::debug!(
                    "address space limited to {limit} bytes; sizing memory reservations to it"
                );
                Engine::new(&engine_config_within(&options.limits, limit))
            }
            None => Engine::new(&engine_config(&options.limits)).or_else(|err| {
                tracing::debug!("no instance pool ({err:#}); mapping instances on demand");
                Engine::new(&engine_config_on_demand(&options.limits))
            }),
        }
        .map_err(RuntimeError::Engine)?;
        Runtime::with_engine(options, engine)
    }

    /// A runtime whose engine is built from `config` instead of [`engine_config`].
    /// For benchmarks that measure a variant (allocator, memory images) against the
    /// product's configuration; start from [`engine_config`] and change one thing.
    /// Epoch interruption must stay on: the deadline depends on it.
    pub fn with_engine_config(
        options: RuntimeOptions,
        config: &Config,
    ) -> Result<Arc<Runtime>, RuntimeError> {
        let engine = Engine::new(config).map_err(RuntimeError::Engine)?;
        Runtime::with_engine(options, engine)
    }

    /// The linker, the epoch ticker and the cache around an engine.
    fn with_engine(options: RuntimeOptions, engine: Engine) -> Result<Arc<Runtime>, RuntimeError> {
        let mut linker = Linker::new(&engine);
        // Toolchains import WASI even when a policy uses none of it; the context
        // behind these imports withholds every capability (see `guest.rs`).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(RuntimeError::Engine)?;
        // No wait on a clock may block the host past a guest's deadline.
        crate::clock::shadow_monotonic_clock(&mut linker).map_err(RuntimeError::Engine)?;
        // What a `provkey:plan@0.2.0` policy reads the plan through.
        crate::bindings::policy_0_2::provkey::plan::plan_view::add_to_linker::<
            GuestState,
            wasmtime::component::HasSelf<GuestState>,
        >(&mut linker, |state| state)
        .map_err(RuntimeError::Engine)?;
        // ... a `provkey:plan@0.3.0` one ...
        crate::bindings::policy_0_3::provkey::plan::plan_view::add_to_linker::<
            GuestState,
            wasmtime::component::HasSelf<GuestState>,
        >(&mut linker, |state| state)
        .map_err(RuntimeError::Engine)?;
        // ... a `provkey:plan@0.4.0` one ...
        crate::bindings::policy_0_4::provkey::plan::plan_view::add_to_linker::<
            GuestState,
            wasmtime::component::HasSelf<GuestState>,
        >(&mut linker, |state| state)
        .map_err(RuntimeError::Engine)?;
        // ... a `provkey:plan@0.5.0` one ...
        crate::bindings::policy_0_5::provkey::plan::plan_view::add_to_linker::<
            GuestState,
            wasmtime::component::HasSelf<GuestState>,
        >(&mut linker, |state| state)
        .map_err(RuntimeError::Engine)?;
        // ... and a `provkey:plan@0.6.0` one.
        crate::bindings::policy_0_6::provkey::plan::plan_view::add_to_linker::<
            GuestState,
            wasmtime::component::HasSelf<GuestState>,
        >(&mut linker, |state| state)
        .map_err(RuntimeError::Engine)?;
        start_epoch_ticker(&engine)?;
        let cache = CompileCache::new(&engine, options.cache_dir);
        Ok(Arc::new(Runtime {
            engine,
            linker,
            limits: options.limits,
            cache,
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// Compiles `bytes` (or loads its compiled form from the cache).
    pub fn component(
        &self,
        name: &str,
        bytes: &[u8],
        digest: &blake3::Hash,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        if bytes.len() > self.limits.component_bytes {
            return Err(RuntimeError::TooLarge {
                name: name.to_string(),
                size: bytes.len(),
                limit: self.limits.component_bytes,
            });
        }
        self.cache
            .load_or_compile(&self.engine, name, bytes, digest)
    }

    /// Compiles (or loads from the cache) a component and links it for `world`,
    /// shared by policies and planners: `typed` wraps the linked component in the
    /// world's generated `...Pre` type, which checks its exports.
    pub(crate) fn prepare<P>(
        &self,
        name: &str,
        bytes: &[u8],
        world: &'static str,
        typed: impl FnOnce(wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<P>,
    ) -> Result<(blake3::Hash, CacheOutcome, P), RuntimeError> {
        let digest = component_digest(bytes);
        let (component, cache) = self.component(name, bytes, &digest)?;
        let pre = self.link(name, &component, world, typed)?;
        Ok((digest, cache, pre))
    }

    /// Like [`Runtime::prepare`] for a component known by its digest alone: `None`
    /// unless the compilation cache holds it.
    pub(crate) fn prepare_cached<P>(
        &self,
        name: &str,
        digest: &blake3::Hash,
        world: &'static str,
        typed: impl FnOnce(wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<P>,
    ) -> Result<Option<P>, RuntimeError> {
        match self.cache.load(&self.engine, name, digest) {
            Some(component) => self.link(name, &component, world, typed).map(Some),
            None => Ok(None),
        }
    }

    fn link<P>(
        &self,
        name: &str,
        component: &Component,
        world: &'static str,
        typed: impl FnOnce(wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<P>,
    ) -> Result<P, RuntimeError> {
        let wrong_world = |source| RuntimeError::WrongWorld {
            name: name.to_string(),
            world,
            source,
        };
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(wrong_world)?;
        typed(instance_pre).map_err(wrong_world)
    }

    /// A fresh store for one evaluation, with its limits and deadline armed.
    pub(crate) fn new_store(&self) -> Store<GuestState> {
        let mut store = Store::new(&self.engine, GuestState::new(self.limits.memory_bytes));
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(self.limits.output_bytes);
        store.set_epoch_deadline(deadline_ticks(self.limits.deadline));
        store.epoch_deadline_trap();
        store
    }
}

/// The blake3 digest of a component. Python and JavaScript components embed their
/// interpreter (12 to 18 MB): those are hashed on every core.
pub fn component_digest(bytes: &[u8]) -> blake3::Hash {
    const PARALLEL_FROM: usize = 1 << 20;
    if bytes.len() < PARALLEL_FROM {
        return blake3::hash(bytes);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_rayon(bytes);
    hasher.finalize()
}

/// The blake3 digest of a component file, equal to [`component_digest`] of its
/// bytes. The file is mapped, not read: a warm cache needs only the digest, and a
/// Python component is 18 MB that reading would copy into a fresh buffer.
pub fn component_file_digest(path: &std::path::Path) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path)?;
    Ok(hasher.finalize())
}

fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    let ticks = deadline.as_nanos().div_ceil(tick);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// The engine configuration of every provkey runtime: [`engine_config_on_demand`]'s
/// settings, with instances from the pool. Public so that benchmarks build their
/// engines exactly like the product's instead of copying this list.
pub fn engine_config(limits: &Limits) -> Config {
    let mut config = engine_config_on_demand(limits);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(limits)));
    config
}

/// Component model, epoch interruption (the deadline), the wasm stack limit,
/// Cranelift at `Speed`, deterministic floats and SIMD, and wasmtime's default
/// on-demand allocator (a fresh mapping for every instance's memory): the engine
/// where the pool cannot be set up, and a benchmark variant.
pub fn engine_config_on_demand(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits.stack_bytes);
    config.cranelift_opt_level(OptLevel::Speed);
    config.parallel_compilation(true);
    // Same inputs, same verdict: no float or SIMD nondeterminism.
    config.cranelift_nan_canonicalization(true);
    config.relaxed_simd_deterministic(true);
    // Proposals no guest toolchain here needs stay off (several advisories lived there).
    config.wasm_memory64(false);
    config.wasm_multi_memory(true);
    config
}

/// The soft limit on this process's address space, if there is one.
fn address_space_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::As).current
}

/// How many memories the sizing under an address-space limit leaves room for at
/// once: the threads evaluating, a few memories each, and the host's own mappings.
const MEMORIES_WITHIN_LIMIT: u64 = 16;

/// [`engine_config_on_demand`] for a process whose address space is limited to
/// `limit` bytes: each memory reserves a sixteenth of it (at most wasmtime's usual
/// 4 GiB, at least one 64 KiB page) with a small guard, and moves if it grows past
/// that; compiled code checks bounds instead of relying on a 4 GiB reservation.
pub fn engine_config_within(limits: &Limits, limit: u64) -> Config {
    const PAGE: u64 = 64 << 10;
    let share = (limit / MEMORIES_WITHIN_LIMIT).min(4 << 30);
    let reservation = (share / PAGE * PAGE).max(PAGE);
    let mut config = engine_config_on_demand(limits);
    config
        .memory_reservation(reservation)
        .memory_guard_size(PAGE)
        .memory_reservation_for_growth(PAGE)
        .guard_before_linear_memory(false)
        .memory_may_move(true);
    config
}

/// How much of a memory slot stays mapped, zeroed, for the next instance.
///
/// Every evaluation runs in a fresh instance, and a fresh mapping costs a page fault
/// for each 4 KiB it touches, then an `munmap`: a fifth of a check's CPU time at
/// 10,000 changes. A slot taken by the next instance (any policy:
/// `max_unused_warm_slots(0)` reuses slots rather than keeping one per module) has
/// its first 16 MiB already resident and zeroed. In the benchmark's rounds: 12 % less
/// time at 10,000 changes and 8 % at 1,000 and 100,000, for the same peak memory
/// (64 MiB gained a few percent more at 10,000 for 15 % more memory).
const KEEP_RESIDENT: usize = 16 << 20;

/// The instance pool: slots for four times as many instances as the host runs at
/// once (one per thread of rayon's pool) plus some, each for a component within the
/// per-component limits of `limits.rs`; each memory slot holds up to the memory
/// limit. Only address space is reserved up front (about 17 GiB per instance slot,
/// mostly the 4 GiB reservations that let compiled code skip bounds checks).
fn pooling_config(limits: &Limits) -> PoolingAllocationConfig {
    let threads = thread::available_parallelism()
        .map_or(8, std::num::NonZeroUsize::get)
        .max(rayon::current_num_threads());
    let instances = u32::try_from(threads.saturating_mul(4).saturating_add(16)).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::default();
    pool.max_unused_warm_slots(0)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto)
        .max_memory_size(limits.memory_bytes)
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(32))
        .total_memories(instances.saturating_mul(4))
        .total_tables(instances.saturating_mul(8))
        .max_core_instances_per_component(crate::limits::MAX_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(crate::limits::MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(crate::limits::MAX_TABLES_PER_COMPONENT)
        .table_elements(crate::limits::MAX_TABLE_ELEMENTS)
        .max_core_instance_size(16 << 20)
        .max_component_instance_size(16 << 20)
        // Stacks are for async execution, which provkey does not use; the default
        // thousand cost a thousand `mprotect` calls in every process.
        .total_stacks(0);
    pool
}

/// Advances the epoch on a dedicated OS thread, holding only a weak reference so
/// the thread ends with the engine.
fn start_epoch_ticker(engine: &Engine) -> Result<(), RuntimeError> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("provkey-epoch".to_string())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        // Without a ticker no deadline would ever fire: refuse to run at all.
        .map_err(|err| {
            RuntimeError::Engine(wasmtime::Error::msg(format!(
                "cannot start the epoch ticker thread: {err}"
            )))
        })
}
