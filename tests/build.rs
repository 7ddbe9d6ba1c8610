//! Builds the test-only guests in `guests/` and tells the tests where they are.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    provkey_guest_build::rerun_if_changed(&[
        root.join("guests"),
        root.join("../wit"),
        root.join("../guest-sdk/src"),
        root.join("../host/plan/src"),
    ]);
    let guests = [
        "hostile",
        "hostile-view",
        "bench-boundary",
        "hostile-planner",
        "summary-0-4",
        "many-rules",
        "bad-schema",
        "claims-immutable",
    ];
    let built = provkey_guest_build::build(&root.join("guests/Cargo.toml"), &out_dir, &guests);
    let mut generated = String::new();
    match built {
        Ok(paths) => {
            for (name, path) in paths {
                let konst = name.to_uppercase().replace('-', "_");
                generated.push_str(&format!(
                    "/// The `{name}` test guest.\npub const {konst}: &str = {:?};\n",
                    path.display().to_string()
                ));
            }
        }
        Err(message) => {
            // Like wasmtime's test-programs: fail loudly here, with the reason.
            println!(
                "cargo:warning=cannot build the test guests: {}",
                message.lines().next().unwrap_or("")
            );
            eprintln!("{message}");
            std::process::exit(1);
        }
    }
    let _ = std::fs::write(out_dir.join("guests.rs"), generated);
}
