//! The guest's monotonic clock runs in virtual time, and every wait on it returns
//! at once.
//!
//! Epoch interruption stops guest code, not a host call: a guest that subscribes to
//! the monotonic clock and polls (`std::thread::sleep`, `poll(2)` with a timeout,
//! `nanosleep`) would hold the host inside `wasi:io/poll.poll` for as long as it
//! asked, past any deadline. Here a wait never blocks: it is ready as soon as it is
//! polled, and the clock jumps forward to the instant waited for, so a guest that
//! sleeps and then reads the clock sees the time it slept, and a guest that waits in a
//! loop runs into the epoch deadline like any other loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::HostMonotonicClock;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable};

use crate::guest::GuestState;

/// How far the clock moves on every reading: never the host's time, but it still
/// moves, for runtimes that wait for it to.
const READING_STEP_NS: u64 = 1_000;

/// One evaluation's virtual monotonic time in nanoseconds, shared by the clock the
/// WASI context reads and the waits the guest subscribes to.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualTime(Arc<AtomicU64>);

impl VirtualTime {
    /// The current instant; each reading advances the clock by one step.
    fn read(&self) -> u64 {
        self.0.fetch_add(READING_STEP_NS, Ordering::Relaxed)
    }

    /// Moves the clock forward to `instant` (never backward).
    fn advance_to(&self, instant: u64) {
        self.0.fetch_max(instant, Ordering::Relaxed);
    }
}

impl HostMonotonicClock for VirtualTime {
    fn resolution(&self) -> u64 {
        READING_STEP_NS
    }

    fn now(&self) -> u64 {
        self.read()
    }
}

/// A wait for an instant of virtual time: ready whenever it is polled.
struct VirtualWait {
    time: VirtualTime,
    until: u64,
}

#[async_trait::async_trait]
impl Pollable for VirtualWait {
    async fn ready(&mut self) {
        self.time.advance_to(self.until);
    }
}

/// What `wasi:clocks/monotonic-clock` works on: the virtual time and the guest's
/// resource table, where its waits live.
pub(crate) struct VirtualClockView<'a> {
    time: &'a VirtualTime,
    table: &'a mut ResourceTable,
}

impl<'a> VirtualClockView<'a> {
    pub(crate) fn new(time: &'a VirtualTime, table: &'a mut ResourceTable) -> Self {
        VirtualClockView { time, table }
    }

    fn wait_until(&mut self, until: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.table.push(VirtualWait {
            time: self.time.clone(),
            until,
        })?;
        wasmtime_wasi::p2::subscribe(self.table, wait)
    }
}

impl monotonic_clock::Host for VirtualClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.time.read())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(READING_STEP_NS)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.wait_until(when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let until = self.time.read().saturating_add(duration);
        self.wait_until(until)
    }
}

struct VirtualClock;

impl HasData for VirtualClock {
    type Data<'a> = VirtualClockView<'a>;
}

/// Replaces wasmtime-wasi's `wasi:clocks/monotonic-clock` (whose waits sleep on the
/// host's clock) with the virtual one. Called after `add_to_linker_sync`.
pub(crate) fn shadow_monotonic_clock(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added =
        monotonic_clock::add_to_linker::<GuestState, VirtualClock>(linker, GuestState::clock_view);
    linker.allow_shadowing(false);
    added
}
