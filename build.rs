//! Build script: picks the model embedded by feature `local-model` (src/core/embed/local.rs).
//!
//! `SEMCACHE_MODEL_DIR` (build-time env var; default `<crate>/.local/models/default`, a symlink made by
//! scripts/build-local.sh) must hold `model.onnx` and `tokenizer.json` (+ optional `meta.json` with a
//! "name"). When both files are there, `cfg(semcache_embedded_model)` is set and `include_bytes!` embeds
//! them; otherwise the crate still builds and `LocalEmbedder::embedded()` returns `NoEmbeddedModel`.
//! `SEMCACHE_MAX_TOKENS` (build-time, default 128) is the embedded model's default token cap.
use std::path::{Path, PathBuf};

// The same `meta.json` reader as the crate's (serde + serde_json are build-dependencies too).
#[path = "src/core/embed/model_meta.rs"]
mod model_meta;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(semcache_embedded_model)");
    println!("cargo::rerun-if-changed=build.rs");
    static_model();
    if std::env::var_os("CARGO_FEATURE_LOCAL_MODEL").is_none() {
        return;
    }
    println!("cargo::rerun-if-env-changed=SEMCACHE_MODEL_DIR");
    println!("cargo::rerun-if-env-changed=SEMCACHE_MAX_TOKENS");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let dir = match std::env::var("SEMCACHE_MODEL_DIR") {
        Ok(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                manifest.join(p)
            }
        }
        _ => manifest.join(".local/models/default"),
    };
    let model = dir.join("model.onnx");
    let tok = dir.join("tokenizer.json");
    println!("cargo::rustc-env=SEMCACHE_EMBED_MAX_TOKENS={}", std::env::var("SEMCACHE_MAX_TOKENS").unwrap_or_default());
    if model.is_file() && tok.is_file() {
        let dir = dir.canonicalize().unwrap_or(dir);
        let model = dir.join("model.onnx");
        let tok = dir.join("tokenizer.json");
        println!("cargo::rerun-if-changed={}", model.display());
        println!("cargo::rerun-if-changed={}", tok.display());
        println!("cargo::rerun-if-changed={}", dir.join("meta.json").display());
        println!("cargo::rustc-cfg=semcache_embedded_model");
        println!("cargo::rustc-env=SEMCACHE_EMBED_DIR={}", dir.display());
        println!("cargo::rustc-env=SEMCACHE_EMBED_NAME={}", model_name(&dir));
    } else {
        println!(
            "cargo::warning=local-model: no model.onnx + tokenizer.json in {} (set SEMCACHE_MODEL_DIR or run scripts/build-local.sh); LocalEmbedder::embedded() will return NoEmbeddedModel",
            dir.display()
        );
        // rebuild when the model directory appears
        let watch = [manifest.join(".local/models"), manifest.join(".local")];
        if let Some(w) = watch.iter().find(|p| p.is_dir()) {
            println!("cargo::rerun-if-changed={}", w.display());
        }
    }
}

/// The embedded model's name, reduced to characters that are safe in a header value and a log line.
fn model_name(dir: &Path) -> String {
    model_meta::model_name(dir).chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect()
}

/// Feature `static-model`: embeds the static table of src/core/embed/static_model.rs.
/// `SEMCACHE_STATIC_DIR` (build-time; default `<crate>/.local/models/static-default`, a link made by
/// scripts/build-static.sh) must hold `model.bin` + `vocab.txt` (+ `check.json` for the test, `meta.json` name);
/// then `cfg(semcache_static_model)` is set. Without them the crate builds and the `local` provider reports
/// that this build has no model.
fn static_model() {
    println!("cargo::rustc-check-cfg=cfg(semcache_static_model)");
    if std::env::var_os("CARGO_FEATURE_STATIC_MODEL").is_none() {
        return;
    }
    println!("cargo::rerun-if-env-changed=SEMCACHE_STATIC_DIR");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let dir = match std::env::var("SEMCACHE_STATIC_DIR") {
        Ok(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                manifest.join(p)
            }
        }
        _ => manifest.join(".local/models/static-default"),
    };
    let files = ["model.bin", "vocab.txt", "check.json"];
    if files.iter().all(|f| dir.join(f).is_file()) {
        let dir = dir.canonicalize().unwrap_or(dir);
        for f in files.iter().chain(&["meta.json"]) {
            println!("cargo::rerun-if-changed={}", dir.join(f).display());
        }
        println!("cargo::rustc-cfg=semcache_static_model");
        println!("cargo::rustc-env=SEMCACHE_STATIC_DIR={}", dir.display());
        println!("cargo::rustc-env=SEMCACHE_STATIC_NAME={}", model_name(&dir));
    } else {
        println!(
            "cargo::warning=static-model: no model.bin + vocab.txt + check.json in {} (run scripts/build-static.sh or set SEMCACHE_STATIC_DIR); the `local` provider will be unavailable",
            dir.display()
        );
        let watch = [manifest.join(".local/models"), manifest.join(".local")];
        if let Some(w) = watch.iter().find(|p| p.is_dir()) {
            println!("cargo::rerun-if-changed={}", w.display());
        }
    }
}
