//! One AFL++ binary for every fuzz target: `AMPEL_FUZZ_TARGET=<name>` picks the harness from
//! `ampel_fuzz::TARGETS` (see `fuzz/run`).

fn main() {
    let name = std::env::var("AMPEL_FUZZ_TARGET").unwrap_or_default();
    let Some(harness) = ampel_fuzz::target(&name) else {
        let names: Vec<&str> = ampel_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("set AMPEL_FUZZ_TARGET to one of: {}", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| harness(data));
}
