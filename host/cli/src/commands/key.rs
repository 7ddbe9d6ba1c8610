//! `provkey key generate`: a minisign-format Ed25519 key pair, made by our code. Also the
//! password and key loading shared by `seal`, `approve` and `trust sign`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use provkey_core::keys::{KeyError, SecretKey};
use provkey_core::minisig::Role;

use crate::exit::{CliError, CliResult, Exit};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair: `<ROLE>.key` (secret) and `<ROLE>.pub` in `--out`.
    Generate(GenerateArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// The directory to write the key pair into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// What the key is for; also the files' base name.
    #[arg(long, value_parser = parse_role, default_value = "plan-signer")]
    pub role: Role,
    /// Write the secret key unencrypted (for tests and CI only).
    #[arg(long, conflicts_with_all = ["password_file", "password_env"])]
    pub unencrypted: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Where a key's password comes from; without either, it is prompted on a terminal.
#[derive(Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read the password from this file (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

pub fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        format!("unknown role `{text}`: use root, plan-signer, approver or policy-publisher")
    })
}

pub fn execute(command: KeyCommand) -> CliResult<Exit> {
    match command {
        KeyCommand::Generate(args) => generate(&args),
    }
}

fn bad(msg: String) -> CliError {
    CliError::bad_input(anyhow!(msg))
}

fn generate(args: &GenerateArgs) -> CliResult<Exit> {
    let secret_path = args.out.join(format!("{}.key", args.role));
    let public_path = args.out.join(format!("{}.pub", args.role));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            return Err(bad(format!("`{}` already exists", path.display()))
                .with_help("choose another `--out` directory; keys are never overwritten"));
        }
    }
    let password = if args.unencrypted {
        None
    } else {
        Some(password(&args.password, true)?)
    };
    let key = SecretKey::generate().map_err(|e| bad(e.to_string()))?;
    let secret = key
        .to_file_text(password.as_deref())
        .map_err(|e| bad(e.to_string()))?;
    let public = key.public().to_file_text();
    std::fs::create_dir_all(&args.out)
        .map_err(|e| bad(format!("cannot create `{}`: {e}", args.out.display())))?;
    write_new(&secret_path, secret.as_bytes(), 0o600)?;
    write_new(&public_path, public.as_bytes(), 0o644)?;
    println!(
        "generated {} key {} ({}): secret `{}`, public `{}`",
        args.role,
        key.public().key_id_hex(),
        if password.is_some() {
            "encrypted"
        } else {
            "unencrypted"
        },
        secret_path.display(),
        public_path.display()
    );
    Ok(Exit::Pass)
}

/// Writes a new file (never replacing one) through a temporary file and a rename.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> CliResult<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    written.map_err(|e| bad(format!("cannot write `{}`: {e}", path.display())))
}

/// Reads the password from the file, the variable, or the terminal.
pub fn password(args: &PasswordArgs, confirm: bool) -> CliResult<Vec<u8>> {
    if let Some(file) = &args.password_file {
        let mut bytes = std::fs::read(file).map_err(|e| {
            bad(format!(
                "cannot read password file `{}`: {e}",
                file.display()
            ))
        })?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        return Ok(bytes);
    }
    if let Some(var) = &args.password_env {
        return std::env::var(var).map(String::into_bytes).map_err(|_| {
            bad(format!(
                "environment variable `{var}` is not set or not UTF-8"
            ))
            .with_help("export the password in that variable, or use `--password-file`")
        });
    }
    if !std::io::stdin().is_terminal() {
        return Err(bad("a password is needed and there is no terminal to ask it on".into())
            .with_help("give `--password-file FILE` or `--password-env VAR` (or `--unencrypted` for test keys)"));
    }
    let first = rpassword::prompt_password("password: ")
        .map_err(|e| bad(format!("cannot read the password: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("password (again): ")
            .map_err(|e| bad(format!("cannot read the password: {e}")))?;
        if again != first {
            return Err(bad("the passwords differ".into()));
        }
    }
    Ok(first.into_bytes())
}

/// Reads and decrypts a secret key; a wrong password is a clear error.
pub fn load_secret_key(path: &Path, args: &PasswordArgs) -> CliResult<SecretKey> {
    let shown = path.display();
    let text = std::fs::read(path)
        .ok()
        .filter(|b| b.len() <= provkey_core::keys::MAX_KEY_FILE_BYTES)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            bad(format!("cannot read secret key `{shown}`"))
                .with_help("check the path given to `--key`")
        })?;
    let encrypted = SecretKey::is_encrypted(&text).map_err(|e| key_error(path, e))?;
    let password = if encrypted {
        Some(password(args, false)?)
    } else {
        None
    };
    SecretKey::from_file_text(&text, password.as_deref()).map_err(|e| key_error(path, e))
}

fn key_error(path: &Path, err: KeyError) -> CliError {
    let help = match err {
        KeyError::WrongPassword => "check the password; nothing was written",
        KeyError::Corrupted => {
            "keys written by `minisign -G -W` carry no checksum: generate keys with `provkey key generate`"
        }
        KeyError::ScryptTooHigh { .. } => "re-encrypt the key with memlimit at most 1 GiB",
        _ => "give a minisign secret key made by `provkey key generate`",
    };
    bad(format!("cannot use secret key `{}`: {err}", path.display())).with_help(help)
}

/// Parses `90s`, `30m`, `24h`, `7d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `90s`, `30m`, `24h` or `7d`"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(factor)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("`{text}` is not a positive duration"))
}
