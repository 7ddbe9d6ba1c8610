//! What a guest's store holds: a WASI context with every capability withheld and
//! deterministic clocks (the monotonic one in virtual time) and randomness, a resource limiter, and its captured stderr.

use std::sync::Arc;
use std::time::Duration;

use provkey_plan::Plan;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::clock::{VirtualClockView, VirtualTime};
use crate::limits::GuestLimiter;

/// How much of a guest's stderr is kept for error messages (a Rust panic message).
pub(crate) const STDERR_CAPTURE: usize = 16 << 10;

/// The fixed seed behind every random byte a guest sees. Toolchains ask for
/// randomness just to start (hash map seeds); a fixed source keeps verdicts
/// reproducible, and no policy has a reason to want real entropy.
const RANDOM_SEED: &[u8] = b"provkey: guests get deterministic randomness";

pub struct GuestState {
    /// The plan under evaluation, for the `plan-view` of a policy of 0.2.0 or later.
    pub(crate) plan: Option<Arc<Plan>>,
    wasi: WasiCtx,
    table: ResourceTable,
    /// The monotonic clock's virtual time (see `clock.rs`).
    time: VirtualTime,
    pub(crate) limiter: GuestLimiter,
    stderr: MemoryOutputPipe,
}

impl GuestState {
    pub fn new(memory_limit: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let time = VirtualTime::default();
        let wasi = WasiCtxBuilder::new()
            // No preopens, no environment, no arguments, no network, no stdin.
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(time.clone())
            .secure_random(wasmtime_wasi::Deterministic::new(RANDOM_SEED.to_vec()))
            .insecure_random(wasmtime_wasi::Deterministic::new(RANDOM_SEED.to_vec()))
            .insecure_random_seed(0x0070_726f_766b_6579)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        GuestState {
            plan: None,
            wasi,
            table: ResourceTable::new(),
            time,
            limiter: GuestLimiter::new(memory_limit),
            stderr,
        }
    }

    /// What `wasi:clocks/monotonic-clock` works on.
    pub(crate) fn clock_view(&mut self) -> VirtualClockView<'_> {
        VirtualClockView::new(&self.time, &mut self.table)
    }

    /// Whether the guest filled its stderr, after which every write fails.
    pub fn stderr_full(&self) -> bool {
        self.stderr.contents().len() >= STDERR_CAPTURE
    }

    /// What the guest wrote to stderr, as one trimmed line of text.
    pub fn stderr_text(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The wall clock stands still at the Unix epoch: a verdict must not depend on when
/// it was computed.
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}
