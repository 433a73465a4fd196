//! Build script: the fingerprint of everything that decides a night's
//! outputs (the Rust code, the SQL, the schema files, the locked
//! dependencies), as `JUNKRECON_BUILD_FINGERPRINT`. A publication made by
//! another build is never kept for a re-run (jobs/records/fingerprints.rs).
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let mut files = vec![];
    for dir in ["jobs", "queries", "schemas"] {
        println!("cargo:rerun-if-changed={dir}");
        walk(Path::new(dir), &mut files);
    }
    for file in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={file}");
        files.push(PathBuf::from(file));
    }
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(f).unwrap_or_default());
        h.update([0]);
    }
    println!(
        "cargo:rustc-env=JUNKRECON_BUILD_FINGERPRINT={}",
        hex(&h.finalize())
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
