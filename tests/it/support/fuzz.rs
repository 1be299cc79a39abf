//! The harness's extension for the fuzz suites (`fuzz_*.rs`): proptest settings scaled by
//! PROPTEST_CASES, a time-bounded random-input loop (FUZZ_SECONDS, FUZZ_SEED) over the same
//! generators, `fuzz_target!` declaring both for one check, and mutation of seed documents.
//!
//! cargo-fuzz would need a nightly compiler in CI; these run on stable in `cargo test`.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Cases per proptest target: PROPTEST_CASES when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Proptest settings: `cases(default)` cases, no regression files written into the tree.
pub fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Report a proptest target's case count (for docs/reliability.md).
pub fn report_cases(target: &str, default: u32) {
    eprintln!("fuzz: {target}: {} proptest cases", cases(default));
}

/// Seconds the timed loop of each target runs: FUZZ_SECONDS, default 2.
pub fn budget() -> Duration {
    let secs: f64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Draw inputs from `strategy` and run `check` on each until the budget is spent. A panic
/// prints the input and the seed (rerun with FUZZ_SEED=<seed>) and fails the test. Returns
/// the number of executions.
pub fn timed<S: Strategy>(target: &str, strategy: S, check: impl Fn(&S::Value)) -> u64
where
    S::Value: std::fmt::Debug,
{
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let budget = budget();
    let t0 = Instant::now();
    let mut execs = 0u64;
    while t0.elapsed() < budget || execs == 0 {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&value))) {
            let shown = format!("{value:?}");
            let shown: String = shown.chars().take(4000).collect();
            eprintln!("fuzz: {target}: input #{execs} failed (FUZZ_SEED={seed}):\n{shown}");
            std::panic::resume_unwind(panic);
        }
        execs += 1;
    }
    eprintln!(
        "fuzz: {target}: {execs} timed executions in {:.1} s (FUZZ_SEED={seed}), no panic",
        t0.elapsed().as_secs_f64()
    );
    execs
}

/// One fuzz target: the proptest test `$prop` (`$cases` cases, scaled by PROPTEST_CASES) and
/// the time-bounded test `$timed` (FUZZ_SECONDS), both drawing from `$strategy` and running
/// `$check` (a `fn(&T)` that panics on a bad outcome); `$name` names the target in reports;
/// `then: $report` runs after the timed loop (to print what it exercised).
macro_rules! fuzz_target {
    (
        $prop:ident, $timed:ident, $name:literal, $cases:expr, $strategy:expr, $check:expr
        $(, then: $report:expr)?
    ) => {
        proptest::proptest! {
            #![proptest_config($crate::support::fuzz::config($cases))]
            #[test]
            fn $prop(input in $strategy) {
                ($check)(&input);
            }
        }

        #[test]
        fn $timed() {
            $crate::support::fuzz::report_cases($name, $cases);
            $crate::support::fuzz::timed($name, $strategy, $check);
            $(($report)();)?
        }
    };
}
pub(crate) use fuzz_target;

/// One edit of a seed document.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Remove up to `len` bytes at a position (a fraction of the length, in 1/65536).
    Delete(u16, u8),
    /// Insert a token at a position.
    Insert(u16, String),
    /// Replace one byte.
    Byte(u16, u8),
    /// Repeat a line.
    DupLine(u16),
    /// Swap two lines.
    SwapLines(u16, u16),
}

/// Tokens that matter to YAML and to platform files.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "\n",
    "\n  ",
    "\t",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "!!str ",
    "!!binary ",
    "!tag ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "|",
    ">",
    "|-",
    "#",
    "---",
    "...",
    "~",
    "null",
    "true",
    "false",
    "0x1F",
    "1e400",
    "-0",
    "9223372036854775808",
    "-9223372036854775809",
    ".inf",
    ".nan",
    "..",
    "../",
    "/etc/passwd",
    "\\",
    "$.a[0]",
    "from_step",
    "output_id",
    "from_file",
    "selector",
    "take",
    "json_path",
    "asset",
    "step_id",
    "module_id",
    "steps",
    "inputs",
    "outputs",
    "kind",
    "path",
    "deliverables",
    "work_order_id",
    "enabled",
    "mode",
    "runner",
    "command",
    "builtin",
    "pricing",
    "run_credits",
    "secrets",
    "version",
    "é",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "🦀",
];

pub fn edit() -> impl Strategy<Value = Edit> {
    let token = prop_oneof![
        4 => proptest::sample::select(TOKENS).prop_map(str::to_string),
        1 => "\\PC{0,12}",
    ];
    prop_oneof![
        1 => (any::<u16>(), 1..40u8).prop_map(|(p, n)| Edit::Delete(p, n)),
        3 => (any::<u16>(), token).prop_map(|(p, t)| Edit::Insert(p, t)),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(p, b)| Edit::Byte(p, b)),
        1 => any::<u16>().prop_map(Edit::DupLine),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn at(frac: u16, len: usize) -> usize {
    (frac as usize * (len + 1)) / 65536
}

/// Apply edits to a seed; the result may be any bytes (then lossily UTF-8 for text targets).
pub fn mutate(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    for e in edits {
        match e {
            Edit::Delete(p, n) => {
                let i = at(*p, b.len()).min(b.len());
                let j = (i + *n as usize).min(b.len());
                b.drain(i..j);
            }
            Edit::Insert(p, t) => {
                let i = at(*p, b.len()).min(b.len());
                b.splice(i..i, t.bytes());
            }
            Edit::Byte(p, v) => {
                if !b.is_empty() {
                    let i = at(*p, b.len() - 1).min(b.len() - 1);
                    b[i] = *v;
                }
            }
            Edit::DupLine(p) | Edit::SwapLines(p, _) => {
                let mut lines: Vec<Vec<u8>> = b
                    .split_inclusive(|&c| c == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                if lines.is_empty() {
                    continue;
                }
                let i = at(*p, lines.len() - 1).min(lines.len() - 1);
                match e {
                    Edit::SwapLines(_, q) => {
                        let j = at(*q, lines.len() - 1).min(lines.len() - 1);
                        lines.swap(i, j);
                    }
                    _ => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                }
                b = lines.concat();
            }
        }
    }
    b
}
