//! The engine is pure: no file in it (these tests aside) names anything that reads
//! the clock, the time zone, the disk, the environment or other processes. Time and
//! the zone arrive as arguments.

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 10] = [
    "std::fs",
    "std::process",
    "std::env",
    "std::net",
    "SystemTime",
    "Instant",
    "Timestamp::now",
    "TimeZone::system",
    "tokio",
    ".clock()",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_engine_reads_no_clock_zone_or_disk() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine"), &mut files);
    assert!(files.len() > 10, "{files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in FORBIDDEN.iter().filter(|w| code.contains(*w)) {
                found.push(format!("{}:{}: {word}", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
