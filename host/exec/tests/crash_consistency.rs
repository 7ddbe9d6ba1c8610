//! Crash consistency of the state file and the claim journal, against a simulated
//! filesystem (SQLite's crash VFS model, `../shared/design/reliability.md` §2 rows
//! 47–48): every write stays pending until its file is synced, every name change until
//! its directory is synced. At each crash point (after every operation of the real
//! write code: `state::store`, `journal::record`, `journal::clear`), every pending
//! data write is kept, dropped or garbled and every pending name change kept or
//! dropped, in all combinations; the recovered filesystem must then read back as the
//! old state or the new one (the journal: absent or the exact claim), never anything
//! else. A deliberately broken writer (no fsync before the rename) shows that the
//! simulation does find torn states.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

use provkey_desired::State;
use provkey_exec::fsio::DurableFs;
use provkey_exec::journal::{self, Claim};
use provkey_exec::state::{self, TargetState};

#[derive(Clone, Debug, Default)]
struct Disk {
    /// name → inode (what survives a crash).
    durable_names: BTreeMap<String, u64>,
    /// name → inode (what the running process sees).
    names: BTreeMap<String, u64>,
    /// inode → synced bytes.
    durable_data: BTreeMap<u64, Vec<u8>>,
    /// inode → written, not yet synced bytes.
    pending_data: BTreeMap<u64, Vec<u8>>,
    /// Name changes since the last directory sync, in order.
    pending_names: Vec<NameOp>,
    next_inode: u64,
}

#[derive(Clone, Debug)]
enum NameOp {
    Link(String, u64),
    Rename(String, String),
    Remove(String),
}

/// The simulated filesystem: fails every operation after `budget` of them (the crash).
struct Sim {
    disk: RefCell<Disk>,
    budget: RefCell<usize>,
    ops: RefCell<usize>,
}

fn crashed() -> io::Error {
    io::Error::other("crashed")
}

impl Sim {
    fn new(disk: Disk, budget: usize) -> Sim {
        Sim {
            disk: RefCell::new(disk),
            budget: RefCell::new(budget),
            ops: RefCell::new(0),
        }
    }
    fn step(&self) -> io::Result<()> {
        let mut budget = self.budget.borrow_mut();
        if *budget == 0 {
            return Err(crashed());
        }
        *budget -= 1;
        *self.ops.borrow_mut() += 1;
        Ok(())
    }
}

impl DurableFs for Sim {
    fn create_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.step()?;
        let mut d = self.disk.borrow_mut();
        if d.names.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        d.next_inode += 1;
        let ino = d.next_inode;
        d.names.insert(name.into(), ino);
        d.durable_data.insert(ino, Vec::new());
        d.pending_data.insert(ino, bytes.to_vec());
        d.pending_names.push(NameOp::Link(name.into(), ino));
        Ok(())
    }
    fn sync_file(&self, name: &str) -> io::Result<()> {
        self.step()?;
        let mut d = self.disk.borrow_mut();
        let ino = *d.names.get(name).ok_or(io::ErrorKind::NotFound)?;
        if let Some(bytes) = d.pending_data.remove(&ino) {
            d.durable_data.insert(ino, bytes);
        }
        Ok(())
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.step()?;
        let mut d = self.disk.borrow_mut();
        let ino = d.names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        d.names.insert(to.into(), ino);
        d.pending_names.push(NameOp::Rename(from.into(), to.into()));
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.step()?;
        let mut d = self.disk.borrow_mut();
        d.durable_names = d.names.clone();
        d.pending_names.clear();
        Ok(())
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.step()?;
        let mut d = self.disk.borrow_mut();
        if d.names.remove(name).is_some() {
            d.pending_names.push(NameOp::Remove(name.into()));
        }
        Ok(())
    }
    fn read(&self, name: &str, _max: u64) -> io::Result<Option<Vec<u8>>> {
        let d = self.disk.borrow();
        Ok(d.names.get(name).map(|ino| {
            d.pending_data
                .get(ino)
                .or_else(|| d.durable_data.get(ino))
                .cloned()
                .unwrap_or_default()
        }))
    }
}

/// A disk whose every name and byte is durable (what a recovered machine sees).
fn settled(names: BTreeMap<String, u64>, data: BTreeMap<u64, Vec<u8>>) -> Disk {
    Disk {
        durable_names: names.clone(),
        names,
        durable_data: data,
        pending_data: BTreeMap::new(),
        pending_names: Vec::new(),
        next_inode: 1000,
    }
}

/// Every disk a crash of `disk` can leave: each pending name change kept or dropped
/// (any subset, applied in order), each pending write kept, dropped or garbled.
fn crash_outcomes(disk: &Disk) -> Vec<Disk> {
    let mut out = Vec::new();
    let n = disk.pending_names.len();
    let pending: Vec<(u64, Vec<u8>)> = disk
        .pending_data
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    for mask in 0..(1u32 << n) {
        let mut names = disk.durable_names.clone();
        for (i, op) in disk.pending_names.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            match op {
                NameOp::Link(name, ino) => {
                    names.insert(name.clone(), *ino);
                }
                NameOp::Rename(from, to) => {
                    if let Some(ino) = names.remove(from) {
                        names.insert(to.clone(), ino);
                    }
                }
                NameOp::Remove(name) => {
                    names.remove(name);
                }
            }
        }
        for choice in 0..3usize.pow(pending.len() as u32) {
            let mut data = disk.durable_data.clone();
            let mut c = choice;
            for (ino, bytes) in &pending {
                match c % 3 {
                    0 => {
                        data.insert(*ino, bytes.clone());
                    }
                    1 => {} // dropped: the durable (maybe empty) content stays
                    _ => {
                        // garbled: a 512-byte "sector" in the middle filled with garbage
                        let mut g = bytes.clone();
                        let start = (g.len() / 2) & !511;
                        let end = (start + 512).min(g.len());
                        for b in &mut g[start..end] {
                            *b = 0xa5;
                        }
                        data.insert(*ino, g);
                    }
                }
                c /= 3;
            }
            out.push(settled(names.clone(), data));
        }
    }
    out
}

fn target_state(serial: u64, resources: usize) -> TargetState {
    let mut state = State::empty();
    state.lineage = Some(uuid::Uuid::from_u128(
        0x6f1c_2a4e_8d0b_4c3e_9a55_0123_4567_89ab,
    ));
    state.serial = serial;
    state.applied_manifest = Some(format!("{serial:064x}"));
    for i in 0..resources {
        state.resources.push(provkey_desired::StateResource {
            address: format!("artifact.a{i}"),
            kind: provkey_desired::Kind::Artifact,
            name: format!("a{i}"),
            depends_on: Vec::new(),
            artifact_digest: Some(format!("blake3:{:064x}", i + serial as usize)),
            config_digest: None,
            attributes: serde_json::json!({"name": format!("a{i}"), "pad": "x".repeat(300)}),
        });
    }
    TargetState {
        target: "prod".into(),
        high_water: serial,
        nonces: (0..serial).map(|n| format!("{n:032x}")).collect(),
        last_seen: 1_790_000_000 + serial,
        state,
        trust_root: None,
        policy_set_version: None,
        audit_head: None,
    }
}

/// Runs `write` against a disk prepared by `setup`, crashing after each of its
/// operations in turn; checks every recovered disk with `check`. Returns how many
/// recovered disks were checked.
fn every_crash(
    setup: impl Fn(&Sim),
    write: impl Fn(&Sim) -> Result<(), String>,
    check: impl Fn(&Sim) -> Result<(), String>,
) -> Result<usize, String> {
    let base = Sim::new(Disk::default(), usize::MAX);
    setup(&base);
    base.sync_dir().unwrap();
    let base = base.disk.into_inner();
    let full = Sim::new(base.clone(), usize::MAX);
    write(&full)?;
    let total = *full.ops.borrow();
    let mut checked = 0;
    for budget in 0..=total {
        let sim = Sim::new(base.clone(), budget);
        let _ = write(&sim);
        for outcome in crash_outcomes(&sim.disk.borrow()) {
            let recovered = Sim::new(outcome, usize::MAX);
            check(&recovered).map_err(|e| format!("crash after {budget} op(s): {e}"))?;
            checked += 1;
        }
    }
    Ok(checked)
}

fn state_is(sim: &Sim, allowed: &[Option<&TargetState>]) -> Result<(), String> {
    match state::load(sim) {
        Ok(got) if allowed.contains(&got.as_ref()) => Ok(()),
        Ok(got) => Err(format!("an unexpected state: {got:?}")),
        Err(err) => Err(format!("a corrupt state: {err}")),
    }
}

#[test]
fn the_state_file_is_always_the_old_or_the_new() {
    let old = target_state(1, 12);
    let new = target_state(2, 14);
    // The first state (no file before), then a replacement.
    let checked = every_crash(
        |_| {},
        |sim| state::store(sim, &new).map_err(|e| e.to_string()),
        |sim| state_is(sim, &[None, Some(&new)]),
    )
    .unwrap();
    let replaced = every_crash(
        |sim| state::store(sim, &old).unwrap(),
        |sim| state::store(sim, &new).map_err(|e| e.to_string()),
        |sim| state_is(sim, &[Some(&old), Some(&new)]),
    )
    .unwrap();
    assert!(checked >= 15 && replaced >= 15, "{checked} {replaced}");
}

#[test]
fn the_journal_is_readable_or_absent_and_an_apply_is_old_or_new() {
    let old = target_state(1, 8);
    let new = target_state(2, 9);
    let claim = Claim::new(&"c".repeat(64), "prod", 2, &"d".repeat(32), 1_790_000_002).unwrap();
    // The apply's whole protocol: claim, commit the state, remove the claim.
    let checked = every_crash(
        |sim| state::store(sim, &old).unwrap(),
        |sim| {
            journal::record(sim, &claim).map_err(|e| e.to_string())?;
            state::store(sim, &new).map_err(|e| e.to_string())?;
            journal::clear(sim).map_err(|e| e.to_string())
        },
        |sim| {
            let j = journal::load(sim).map_err(|e| format!("a corrupt journal: {e}"))?;
            if j.as_ref().is_some_and(|j| j != &claim) {
                return Err(format!("an unexpected claim: {j:?}"));
            }
            state_is(sim, &[Some(&old), Some(&new)])?;
            // Without a claim, the state is the old one only if the claim never
            // became durable: a committed state never loses its claim before it is
            // itself durable, and an old state with no claim means nothing started.
            Ok(())
        },
    )
    .unwrap();
    assert!(checked >= 32, "{checked}");
}

/// The negative control: replacing the file in place, or renaming before the data is
/// synced, is caught by the same simulation.
#[test]
fn the_simulation_finds_torn_writes() {
    struct Broken<'a>(&'a Sim);
    let old = target_state(1, 12);
    let new = target_state(2, 14);
    let in_place = every_crash(
        |sim| state::store(sim, &old).unwrap(),
        |sim| {
            let bytes = new.to_bytes().unwrap();
            sim.remove(state::STATE_FILE).map_err(|e| e.to_string())?;
            sim.create_file(state::STATE_FILE, &bytes)
                .map_err(|e| e.to_string())?;
            sim.sync_file(state::STATE_FILE)
                .map_err(|e| e.to_string())?;
            sim.sync_dir().map_err(|e| e.to_string())
        },
        |sim| state_is(sim, &[Some(&old), Some(&new)]),
    );
    assert!(
        in_place.is_err(),
        "an in-place rewrite must show a torn or lost state"
    );
    let no_fsync = every_crash(
        |sim| state::store(sim, &old).unwrap(),
        |sim| {
            let b = Broken(sim);
            let bytes = new.to_bytes().unwrap();
            b.0.create_file(".tmp", &bytes).map_err(|e| e.to_string())?;
            b.0.rename(".tmp", state::STATE_FILE)
                .map_err(|e| e.to_string())?;
            b.0.sync_dir().map_err(|e| e.to_string())
        },
        |sim| state_is(sim, &[Some(&old), Some(&new)]),
    );
    let err = no_fsync.unwrap_err();
    assert!(err.contains("corrupt"), "{err}");
}
