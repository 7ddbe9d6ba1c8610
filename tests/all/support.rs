//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `provkey` binary under test.
pub fn provkey() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provkey"));
    cmd.env("PROVKEY_CACHE_DIR", shared_cache())
        .env_remove("PROVKEY_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// The `provkey-exec` binary (the executor's verifier), built beside `provkey` by
/// `cargo test --workspace` (its own integration test makes cargo build it).
pub fn provkey_exec() -> Command {
    let provkey = Path::new(env!("CARGO_BIN_EXE_provkey"));
    let exec = provkey.with_file_name(format!("provkey-exec{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exec.is_file(),
        "`{}` is missing: build it first with `cargo build -p provkey-exec` \
         (`cargo test --workspace` builds it)",
        exec.display()
    );
    let mut cmd = Command::new(exec);
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Where fixtures that live as long as the test run go (held in statics, which are
/// never dropped, or kept on purpose): cargo's `target/tmp`, which `cargo clean`
/// empties, instead of the system's `/tmp`, where every run left hundreds of MB.
pub fn run_tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// One compilation cache for the whole test run, so each component compiles once.
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir_in(run_tmp()).expect("temp dir"))
        .path()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run provkey");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `cmd`, killing it once `limit` has passed: `None` if it had to be killed.
/// For tests whose failure on a regression would otherwise be a hang.
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Option<Run> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run provkey");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for provkey") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    status.map(|status| Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    })
}

/// `provkey check` with these arguments.
pub fn check(args: &[&str]) -> Run {
    run(provkey().arg("check").args(args))
}

/// A file in the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// `../shared/data/<sub>` beside the checkout, or `None` (with a loud note) when
/// it is absent: tests that need it then skip, and say so.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("PROVKEY_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("../shared"))
        .join("data")
        .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: `{}` is absent; set PROVKEY_SHARED_DIR to the shared/ folder to run this test",
            dir.display()
        );
        None
    }
}

/// Every Terraform plan in the shared data, sorted.
pub fn terraform_plans() -> Option<Vec<PathBuf>> {
    let dir = shared_data("terraform-plans")?;
    let mut plans: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read shared plans")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    plans.sort();
    assert!(!plans.is_empty(), "the shared plan folder is empty");
    Some(plans)
}

/// Writes `content` to a file in a fresh temp dir.
pub fn temp_file(name: &str, content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write temp file");
    (dir, path)
}

/// A small Terraform plan with one change per action.
pub const SAMPLE_PLAN: &str = r#"{
  "format_version": "1.2",
  "terraform_version": "1.9.5",
  "resource_changes": [
    {"address": "aws_instance.web", "mode": "managed", "type": "aws_instance", "name": "web",
     "provider_name": "registry.terraform.io/hashicorp/aws",
     "change": {"actions": ["update"], "before": {"ami": "ami-1", "instance_type": "t3.micro", "password": "hunter2"},
                "after": {"ami": "ami-2", "instance_type": "t3.micro", "password": "hunter3"},
                "after_unknown": {}, "before_sensitive": {"password": true}, "after_sensitive": {"password": true}}},
    {"address": "aws_s3_bucket.logs", "mode": "managed", "type": "aws_s3_bucket", "name": "logs",
     "provider_name": "registry.terraform.io/hashicorp/aws",
     "change": {"actions": ["create"], "before": null, "after": {"bucket": "logs"}, "after_unknown": {"arn": true}}},
    {"address": "aws_db_instance.main", "mode": "managed", "type": "aws_db_instance", "name": "main",
     "provider_name": "registry.terraform.io/hashicorp/aws", "action_reason": "replace_because_cannot_update",
     "change": {"actions": ["create", "delete"], "before": {"engine": "postgres"}, "after": {"engine": "postgres"}}},
    {"address": "aws_iam_role.old", "mode": "managed", "type": "aws_iam_role", "name": "old",
     "provider_name": "registry.terraform.io/hashicorp/aws",
     "change": {"actions": ["delete"], "before": {"name": "old"}, "after": null}}
  ]
}"#;

/// A plan with no in-place update.
pub fn sample_plan_without_update() -> String {
    SAMPLE_PLAN.replace(r#"["update"]"#, r#"["no-op"]"#)
}
