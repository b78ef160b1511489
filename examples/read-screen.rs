//! What vigil reads on captured screens: `cargo run --example read-screen -- FILE…`
//! prints each file's verdict (rate_limited, waiting, busy, idle, quiet), the rule that
//! saw a dialog and its line. The preset is the file name's first word
//! (`codex-0.171.0-hooks-review.txt` → codex), else `shell`; `--preset NAME` sets it
//! for the files after it. Used by scripts/live-presets.sh.

use std::path::Path;
use std::process::ExitCode;

use vigil::config::Config;
use vigil::engine::screen::{self, Verdict};

fn preset_of(file: &Path) -> String {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let first = name.split('-').next().unwrap_or("");
    vigil::config::preset::names()
        .find(|p| *p == first)
        .unwrap_or(vigil::config::preset::FALLBACK)
        .to_owned()
}

fn read(file: &Path, preset: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let config = format!("[[agent]]\nname = \"x\"\ncommand = \"x\"\npreset = \"{preset}\"\ncwd = \"/\"\n");
    let config = Config::parse(&config, Path::new("/vigil.toml")).map_err(|e| format!("preset {preset}: {e}"))?;
    let agent = config.agents.first().ok_or("no agent")?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let policy = &agent.policy;
    let r = screen::read(&lines, &agent.patterns, policy.tail_lines, policy.rate_limit_lines);
    let why = match (r.verdict(), &r.waiting, &r.rate_limit) {
        (Verdict::RateLimited, _, Some(line)) => format!("«{line}»"),
        (Verdict::Waiting, Some(w), _) => format!("by {}: «{}»", w.rule.as_str(), w.line),
        _ => String::new(),
    };
    Ok(format!("{:<12} {preset:<7} {why}", r.verdict().as_str()))
}

fn main() -> ExitCode {
    let mut preset = None;
    let mut args = std::env::args().skip(1);
    let mut failed = false;
    while let Some(arg) = args.next() {
        if arg == "--preset" {
            preset = args.next();
            continue;
        }
        let file = Path::new(&arg);
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or(&arg);
        match read(file, preset.as_deref().unwrap_or(&preset_of(file))) {
            Ok(line) => println!("{name:<52} {line}"),
            Err(e) => {
                eprintln!("read-screen: {e}");
                failed = true;
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
