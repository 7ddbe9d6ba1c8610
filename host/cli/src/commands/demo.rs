//! `provkey demo`: the whole cycle on the example that ships with provkey, in a
//! temporary directory, with a throw-away key.
//!
//! plan, check, seal and apply version 1; change the artifact, plan and apply version
//! 2 (a replace); tamper with a deployed file and show the drift; roll back to version
//! 1 as a fresh, signed deployment. The executor half runs through `provkey-exec`'s
//! library with the public key only, as the `provkey-exec` binary would.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use provkey_core::keys::SecretKey;
use provkey_core::trust::TrustRoot;
use provkey_exec::{ApplyOptions, ApplyReport, DriftReport};

use super::check::{ReviewArgs, RuntimeArgs};
use super::key::PasswordArgs;
use super::plan::{PlanArgs, StateArg};
use super::rollback::RollbackArgs;
use super::seal::SealArgs;
use crate::exit::{CliError, CliResult, Exit};

/// The example, embedded so that the demo runs from any directory.
const EXAMPLE: &[(&str, &str, u32)] = &[
    (
        "app.toml",
        include_str!("../../../../examples/desired/app.toml"),
        0o644,
    ),
    (
        "app-v2.toml",
        include_str!("../../../../examples/desired/app-v2.toml"),
        0o644,
    ),
    (
        "app/v1/README.txt",
        include_str!("../../../../examples/desired/app/v1/README.txt"),
        0o644,
    ),
    (
        "app/v1/bin/hello",
        include_str!("../../../../examples/desired/app/v1/bin/hello"),
        0o755,
    ),
    (
        "app/v2/README.txt",
        include_str!("../../../../examples/desired/app/v2/README.txt"),
        0o644,
    ),
    (
        "app/v2/bin/hello",
        include_str!("../../../../examples/desired/app/v2/bin/hello"),
        0o755,
    ),
];

/// The environment of the example (`target = "demo"` in `app.toml`).
const TARGET: &str = "demo";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Work in this directory (created; must not exist) and keep it afterwards,
    /// instead of a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

pub fn execute(args: DemoArgs) -> CliResult<Exit> {
    let (_temp, root) = match &args.dir {
        Some(dir) => {
            if dir.symlink_metadata().is_ok() {
                return Err(bad(format!("`{}` already exists", dir.display()))
                    .with_help("give `--dir` a new directory, or omit it"));
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| bad(format!("cannot create `{}`: {e}", dir.display())))?;
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("provkey-demo-")
                .tempdir()
                .map_err(|e| bad(format!("cannot create a temporary directory: {e}")))?;
            let root = temp.path().to_path_buf();
            (Some(temp), root)
        }
    };
    Demo::new(root, args.runtime)?.run()
}

struct Demo {
    root: PathBuf,
    runtime: RuntimeArgs,
    key: PathBuf,
    trust: TrustRoot,
    target_dir: PathBuf,
    step: usize,
}

const STEPS: usize = 9;

impl Demo {
    fn new(root: PathBuf, runtime: RuntimeArgs) -> CliResult<Demo> {
        for (name, body, mode) in EXAMPLE {
            write_file(&root.join(name), body.as_bytes(), *mode)?;
        }
        // A throw-away plan-signer key; the executor gets its public half only.
        let secret = SecretKey::generate().map_err(|e| bad(e.to_string()))?;
        let key = root.join("keys/plan-signer.key");
        let text = secret.to_file_text(None).map_err(|e| bad(e.to_string()))?;
        write_file(&key, text.as_bytes(), 0o600)?;
        write_file(
            &root.join("keys/plan-signer.pub"),
            secret.public().to_file_text().as_bytes(),
            0o644,
        )?;
        let trust = TrustRoot::single_key(secret.public());
        let target_dir = root.join("target");
        std::fs::create_dir_all(&target_dir)
            .map_err(|e| bad(format!("cannot create `{}`: {e}", target_dir.display())))?;
        Ok(Demo {
            root,
            runtime,
            key,
            trust,
            target_dir,
            step: 0,
        })
    }

    fn header(&mut self, title: &str, why: &str) {
        self.step += 1;
        println!("\n== {}/{STEPS} {title}", self.step);
        println!("   {why}");
    }

    fn run(mut self) -> CliResult<Exit> {
        println!(
            "provkey demo: the whole cycle in `{}` (target `{TARGET}`, a throw-away key)",
            self.root.display()
        );
        self.header(
            "plan version 1",
            "app.toml declares an artifact (app/v1, pinned by its blake3 digest) and two \
             instances; nothing is deployed yet, so the stock Wasm planner creates everything.",
        );
        self.plan("app.toml", StateArg::None, "plan-v1.json")?;

        self.header(
            "check and seal version 1",
            "the stock policies run in the sandbox; the plan passes, so it is signed into a \
             bundle with the provisioning key.",
        );
        self.seal("plan-v1.json", "app.toml", StateArg::None, "bundle-v1", 1)?;

        self.header(
            "apply version 1",
            "the executor holds only the public key: it verifies the bundle, then creates \
             read-only releases and switches the live pointers.",
        );
        let v1 = self.apply("bundle-v1")?;
        self.show_live(&v1);

        self.header(
            "plan, check and seal version 2",
            "app-v2.toml points at a new build (app/v2). A new artifact means new \
             instances: the plan replaces them, never updates them in place.",
        );
        let state = self.save_state("state-v1.json")?;
        self.plan("app-v2.toml", StateArg::File(state.clone()), "plan-v2.json")?;
        self.seal(
            "plan-v2.json",
            "app-v2.toml",
            StateArg::File(state),
            "bundle-v2",
            2,
        )?;

        self.header(
            "apply version 2",
            "create before destroy: each new release is live before the old one is removed.",
        );
        let v2 = self.apply("bundle-v2")?;
        self.show_live(&v2);

        self.header(
            "replay version 1",
            "an old bundle is refused: its sequence is at or below the last one applied, and \
             the state it was planned against is gone.",
        );
        match provkey_exec::apply(
            &self.root.join("bundle-v1"),
            &self.trust,
            &ApplyOptions::new(TARGET, provkey_core::unix_now()),
            &self.target_dir,
        ) {
            Ok(_) => {
                return Err(bad(
                    "the executor accepted a replayed bundle; the demo stops here".into(),
                ));
            }
            Err(err) => println!("   refused: {err}"),
        }

        self.header(
            "tamper with a deployed file, and detect the drift",
            "someone edits a running release by hand; the executor compares every release \
             with the digests it deployed.",
        );
        let tampered = self.tamper()?;
        println!("   edited `{}`", tampered.display());
        let drift =
            provkey_exec::drift(&self.target_dir, provkey_core::unix_now()).map_err(exec_error)?;
        print_drift(&drift);
        if !drift.has_drift() {
            return Err(bad(
                "the executor saw no drift after a deployed file was edited".into(),
            ));
        }

        self.header(
            "roll back to version 1",
            "a rollback is a fresh deployment of an earlier desired state: rebuilt from the \
             version 1 bundle, planned against the current state, checked with the current \
             policies, sealed with a new sequence, applied by replacing the instances (the \
             tampered release goes with them).",
        );
        let state = self.save_state("state-v2.json")?;
        let exit = super::rollback::execute(RollbackArgs {
            to: self.root.join("bundle-v1"),
            state: StateArg::File(state),
            key: self.key.clone(),
            out: self.root.join("bundle-v3"),
            target: Some(TARGET.into()),
            trust: None,
            plan_out: Some(self.root.join("plan-v3.json")),
            sequence: Some(3),
            expires_in: 3600,
            policies: Vec::new(),
            configs: Vec::new(),
            data_dir: Some(self.root.join("data")),
            password: PasswordArgs::default(),
            review: ReviewArgs::default(),
            runtime: self.runtime.clone(),
        })?;
        if exit != Exit::Pass {
            return Ok(exit);
        }
        let v3 = self.apply("bundle-v3")?;
        self.show_live(&v3);

        self.header(
            "verify: no drift, and an intact audit log",
            "every refusal and every apply is in a hash-chained log.",
        );
        let drift =
            provkey_exec::drift(&self.target_dir, provkey_core::unix_now()).map_err(exec_error)?;
        print_drift(&drift);
        let log = provkey_exec::verify_log(&self.target_dir).map_err(exec_error)?;
        println!(
            "   audit log: {} entries, hash chain intact (head {})",
            log.entries.len(),
            log.head.get(..16).unwrap_or(&log.head)
        );
        if drift.has_drift() {
            return Err(bad("drift remains after the rollback".into()));
        }
        println!(
            "\ndone. The executor's side is `provkey-exec`: try `provkey-exec log --verify \
             --target-dir DIR` on a kept run (`provkey demo --dir DIR`)."
        );
        Ok(Exit::Pass)
    }

    fn plan(&self, desired: &str, state: StateArg, out: &str) -> CliResult<()> {
        let exit = super::plan::execute(PlanArgs {
            desired: self.root.join(desired),
            state,
            out: self.root.join(out),
            planner: None,
            runtime: self.runtime.clone(),
        })?;
        expect_pass(exit, "plan")
    }

    fn seal(
        &self,
        plan: &str,
        desired: &str,
        state: StateArg,
        out: &str,
        sequence: u64,
    ) -> CliResult<()> {
        let exit = super::seal::execute(SealArgs {
            plan: self.root.join(plan),
            key: self.key.clone(),
            target: TARGET.into(),
            out: self.root.join(out),
            policies: Vec::new(),
            configs: Vec::new(),
            expires_in: 3600,
            audiences: Vec::new(),
            trust: None,
            sequence: Some(sequence),
            artifact: None,
            artifact_uri: None,
            desired: Some(self.root.join(desired)),
            state: Some(state),
            data_dir: Some(self.root.join("data")),
            password: PasswordArgs::default(),
            review: ReviewArgs::default(),
            runtime: self.runtime.clone(),
        })?;
        expect_pass(exit, "seal")
    }

    fn apply(&self, bundle: &str) -> CliResult<ApplyReport> {
        let report = provkey_exec::apply(
            &self.root.join(bundle),
            &self.trust,
            &ApplyOptions::new(TARGET, provkey_core::unix_now()),
            &self.target_dir,
        )
        .map_err(exec_error)?;
        println!(
            "   applied manifest {} (sequence {}): state serial {}",
            report.manifest.get(..16).unwrap_or(&report.manifest),
            report.sequence,
            report.serial
        );
        for step in &report.steps {
            let mut line = format!("   {:<8} {}", step.action, step.address);
            if let Some(release) = &step.release {
                line.push_str(&format!(" -> releases/{release}"));
            }
            if let Some(removed) = &step.removed {
                line.push_str(&format!(" (removed releases/{removed})"));
            }
            println!("{line}");
        }
        Ok(report)
    }

    /// Prints what each live instance runs.
    fn show_live(&self, _report: &ApplyReport) {
        let live = self.target_dir.join(provkey_exec::target::LIVE);
        let Ok(entries) = std::fs::read_dir(&live) else {
            return;
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let readme = live.join(&name).join("artifact/README.txt");
            let runs = std::fs::read_to_string(&readme).unwrap_or_default();
            println!(
                "   live/{} runs: {}",
                name.to_string_lossy(),
                runs.lines().next().unwrap_or("?")
            );
        }
    }

    /// Writes the executor's state where `provkey plan --state` reads it.
    fn save_state(&self, name: &str) -> CliResult<PathBuf> {
        let state = provkey_exec::read_state(&self.target_dir)
            .map_err(exec_error)?
            .ok_or_else(|| bad("the target has no state after an apply".into()))?;
        let path = self.root.join(name);
        write_file(
            &path,
            provkey_exec::state_json(&state.state).as_bytes(),
            0o644,
        )?;
        Ok(path)
    }

    /// Edits a file of the live `web` release, as an operator would by hand.
    fn tamper(&self) -> CliResult<PathBuf> {
        let file = self
            .target_dir
            .join(provkey_exec::target::LIVE)
            .join("web/artifact/README.txt");
        let resolved = std::fs::canonicalize(&file)
            .map_err(|e| bad(format!("cannot find `{}`: {e}", file.display())))?;
        set_mode(&resolved, 0o644)?;
        std::fs::write(&resolved, "hello, edited by hand in production\n")
            .map_err(|e| bad(format!("cannot edit `{}`: {e}", resolved.display())))?;
        Ok(file)
    }
}

fn print_drift(report: &DriftReport) {
    if report.drift.is_empty() {
        println!(
            "   no drift: {} instance(s) match what was deployed",
            report.instances
        );
    }
    for d in &report.drift {
        println!("   drift: {} `{}`: {}", d.address, d.path, d.detail);
    }
}

fn expect_pass(exit: Exit, what: &str) -> CliResult<()> {
    if exit == Exit::Pass {
        Ok(())
    } else {
        Err(CliError {
            exit,
            error: anyhow!("the demo's {what} step did not pass"),
            help: Some("this is a bug in the shipped example: please report it".into()),
        })
    }
}

fn exec_error(err: provkey_exec::ExecError) -> CliError {
    let help = err.help();
    CliError::bad_input(err).with_help(help)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> CliResult<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| bad(format!("cannot create `{}`: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes)
        .map_err(|e| bad(format!("cannot write `{}`: {e}", path.display())))?;
    set_mode(path, mode)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> CliResult<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| bad(format!("cannot set the mode of `{}`: {e}", path.display())))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> CliResult<()> {
    Ok(())
}
