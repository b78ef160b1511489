//! One supervision pass over N fake agents in a private tmux server, measured two ways:
//! the whole `vigil tick` process (claim, load, observe, step, save) and the in-process
//! `Supervisor::pass`. Prints figures; asserts nothing.
//!
//!     cargo bench --bench tick            # 20 agents
//!     VIGIL_BENCH_AGENTS=100 cargo bench --bench tick

use std::process::Command;
use std::time::{Duration, Instant};

use vigil::adapters::tmux::TmuxCli;
use vigil::config::Config;
use vigil::store::{Role, Store};
use vigil::supervisor::Supervisor;

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

fn stats(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2];
    println!(
        "{label}: n={} min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(median),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1])
    );
}

fn main() {
    let agents: usize = std::env::var("VIGIL_BENCH_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rounds = 30;
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("vigil-bench-{}", std::process::id());
    let worker = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/agents/worker.sh");
    let mut config = format!("[vigil]\nsocket = \"{socket}\"\n\n");
    for i in 0..agents {
        config.push_str(&format!(
            "[[agent]]\nname = \"w{i:03}\"\ncommand = [\"sh\", \"{worker}\"]\nenv = {{ WORKER_PAUSE = \"1\" }}\n\n"
        ));
    }
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, config).unwrap();
    let state = dir.path().join("state");
    let vigil = |args: &[&str]| {
        let out = Command::new(VIGIL)
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("VIGIL_STATE_DIR", &state)
            .output()
            .unwrap();
        assert!(
            out.status.success() || args[0] == "up",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    vigil(&["up"]);
    std::thread::sleep(Duration::from_secs(1));

    let mut tick = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        vigil(&["tick"]);
        tick.push(start.elapsed());
    }

    let config = Config::load(&path).unwrap();
    let store = Store::open(&state).unwrap();
    let (mut sup, _) = Supervisor::claim(config, TmuxCli::new(Some(socket.clone())), store, Role::Tick, now()).unwrap();
    let mut pass = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        sup.pass(Vec::new(), true, now()).unwrap();
        pass.push(start.elapsed());
    }
    let live = sup.mind().agents.values().filter(|r| r.is_live()).count();
    drop(sup);
    let _ = Command::new("tmux").args(["-L", &socket, "kill-server"]).output();

    println!("{agents} fake agents ({live} live at the end), {rounds} rounds each");
    stats("`vigil tick` process (claim, load, observe, step, act, save)", tick);
    stats("Supervisor::pass in process (observe, step, act, save)", pass);
}

fn now() -> vigil::engine::Time {
    vigil::engine::Time::from_millis(jiff::Timestamp::now().as_millisecond())
}
