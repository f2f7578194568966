//! Replays the fuzz corpora through the fuzz targets' own checks (fuzz_checks.rs): the committed
//! seeds (fuzz/seeds/<target>/) and every input that once made a target fail
//! (src/core/testdata/fuzz/<target>/, one file per finding, named for it). Each runs on a thread
//! with a 1 MiB stack, the wasm32 default, so a recursion that would abort the VM fails here too.

use std::path::{Path, PathBuf};

use super::fuzz_checks::{flow_outcome, TARGETS};

const WASM_STACK: usize = 1 << 20;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runs every file of `<root>/<target>/` through its target's check; returns how many ran.
fn replay(root: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let mut n = 0;
    for (name, check) in TARGETS {
        for path in files(&root.join(name)) {
            let data = std::fs::read(&path).unwrap();
            let check = *check;
            let run = std::thread::Builder::new().stack_size(WASM_STACK).spawn(move || check(&data)).unwrap();
            assert!(run.join().is_ok(), "{name}: {} fails its check", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn findings_stay_fixed() {
    assert!(replay("src/core/testdata/fuzz") >= 2);
}

#[test]
fn seed_corpora_pass() {
    assert!(replay("fuzz/seeds") >= 50);
}

#[test]
fn every_target_has_seeds_or_findings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in TARGETS {
        let n = files(&root.join("fuzz/seeds").join(name)).len()
            + files(&root.join("src/core/testdata/fuzz").join(name)).len();
        assert!(n > 0, "fuzz target {name} has no seed corpus");
        assert!(root.join("fuzz/fuzz_targets").join(format!("{name}.rs")).is_file(), "no fuzz/fuzz_targets/{name}.rs");
    }
}

/// The flow seeds reach both a cache answer and a store, so the flow target's properties about
/// them are exercised, not vacuous.
#[test]
fn flow_seeds_reach_hits_and_stores() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/flow");
    let (mut hits, mut stores) = (0, 0);
    for path in files(&dir) {
        let (hit, store) = flow_outcome(&std::fs::read(path).unwrap());
        hits += usize::from(hit);
        stores += usize::from(store);
    }
    assert!(hits > 0 && stores > 0, "flow seeds: {hits} hits, {stores} stores");
}
