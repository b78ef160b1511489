//! The per-pass cost of reading every live pane's process tree from /proc, at 100
//! agents: 100 shells, each with a child, read exactly as the supervisor reads them
//! each pass ([`Trees::look`]: descendants by `task/*/children`, each process's stat
//! once, CPU since the last pass, the busiest names, the `process` pattern matched).
//! Prints figures; asserts nothing. Run it on a quiet machine.
//!
//!     cargo bench --bench tree            # 100 trees
//!     VIGIL_BENCH_AGENTS=500 cargo bench --bench tree

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use vigil::adapters::proctree;
use vigil::supervisor::trees::Trees;

fn cpu_of_self() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<u64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // After the name, numbers only (the state is skipped): utime and stime (fields 14
    // and 15 of stat) are the 11th and 12th.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn main() {
    let agents: usize = std::env::var("VIGIL_BENCH_AGENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let mut shells: Vec<Child> = (0..agents)
        .map(|_| Command::new("sh").args(["-c", "sleep 300 & wait"]).spawn().unwrap())
        .collect();
    let pids: Vec<u32> = shells.iter().map(Child::id).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && pids.iter().any(|p| proctree::tree(*p).len() < 2) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rounds = 200;
    let cpu_before = cpu_of_self();
    let mut passes = Vec::with_capacity(rounds);
    let mut seen = 0;
    let mut trees = Trees::default();
    let sessions: Vec<String> = (0..agents).map(|i| format!("agent-{i}")).collect();
    // As a preset's `process = "^claude$"` makes it: every name of the tree matched.
    let process = regex::Regex::new("^claude$").ok();
    for _ in 0..rounds {
        let start = Instant::now();
        for (pid, session) in pids.iter().zip(&sessions) {
            let seen_now = trees.look(session, *pid, process.as_ref(), Instant::now());
            seen += seen_now.tree.map_or(0, |t| t.count as usize);
        }
        let listed: std::collections::HashSet<&str> = sessions.iter().map(String::as_str).collect();
        trees.retain(|s| listed.contains(s));
        passes.push(start.elapsed());
    }
    let cpu = cpu_of_self().saturating_sub(cpu_before);
    passes.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "tree refresh, {agents} panes ({} processes): per pass median {:.2} ms, p90 {:.2} ms, max {:.2} ms; CPU {:.2} ms per pass ({rounds} passes); at a 1 s poll that is {:.2} % of one core",
        seen / rounds,
        ms(passes[passes.len() / 2]),
        ms(passes[passes.len() * 9 / 10]),
        ms(passes[passes.len() - 1]),
        ms(cpu) / rounds as f64,
        ms(cpu) / rounds as f64 / 10.0,
    );
    for pid in &pids {
        for p in proctree::tree(*pid).iter().skip(1) {
            vigil::adapters::process::kill(p.pid);
        }
    }
    for s in &mut shells {
        let _ = s.kill();
        let _ = s.wait();
    }
}
