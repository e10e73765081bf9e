//! Replays every committed corpus input through its target: the fuzzers' findings stay fixed,
//! and every harness runs on every `cargo test` (the smoke of `tests/run`).

use std::path::Path;

#[test]
fn every_corpus_input_runs_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut total = 0;
    for (name, harness) in ampel_fuzz::TARGETS {
        let dir = root.join(name);
        let inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target needs a corpus)", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        assert!(!inputs.is_empty(), "{name}: empty corpus");
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
            harness(&bytes);
            total += 1;
        }
    }
    assert!(total > 0);
}
