//! Packs one directory with build_package and prints throughput; used by scripts/bench-package.sh.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, zip] = args.as_slice() else {
        eprintln!("usage: bench_package SOURCE_DIR OUT.zip");
        return ExitCode::from(2);
    };
    let sources = [platform::builtin::PackSource {
        as_path: "data".into(),
        source: platform::beneath::Beneath::in_parent(Path::new(src)),
    }];
    let zip = PathBuf::from(zip);
    let json = zip.with_extension("manifest.json");
    let csv = zip.with_extension("manifest.csv");
    let start = Instant::now();
    match platform::builtin::build_package(&sources, &zip, Some(&json), Some(&csv)) {
        Ok(summary) => {
            let secs = start.elapsed().as_secs_f64();
            let input: u64 = summary.files.iter().map(|f| f.bytes).sum();
            println!(
                "files={} input_bytes={input} zip_bytes={} seconds={secs:.2} input_MB_per_s={:.1} zip_sha256={}",
                summary.files.len(),
                summary.zip_bytes,
                input as f64 / 1e6 / secs,
                summary.zip_sha256
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
