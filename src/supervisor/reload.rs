//! Taking a new config while running: what changed, by key, journaled as one
//! `reloaded` record; no agent is touched (a new command, cwd or env applies from that
//! agent's next start). The socket and the state dir cannot move under a running owner.

use super::{Records, Supervisor, fleet_of};
use crate::adapters::tmux::Tmux;
use crate::config::{AgentConfig, Config};
use crate::engine::{self, AgentName, Time};
use crate::store::record::Reload;
use crate::store::{Record, StoreError};

impl<T: Tmux> Supervisor<T> {
    /// Takes a new config while running, without touching a single agent: each keeps
    /// its session and incarnation (the engine recognises it by its tags); a changed
    /// policy or pattern applies from the next pass, a changed command, cwd or env from
    /// the agent's next start; a new agent is started by the next pass; one taken out
    /// is left running as a stray. The tmux socket and the state dir cannot move under
    /// a running owner: they keep their values until vigil restarts, and a warning says
    /// so. What changed is journaled as one `reloaded` record.
    pub fn reload(&mut self, mut config: Config, now: Time) -> Result<Records, StoreError> {
        let mut records = Records::new();
        let old = &self.config;
        let mut kept = Vec::new();
        if config.socket != old.socket {
            kept.push(format!(
                "`socket` changed to {:?}; vigil keeps using {:?} until it restarts",
                config.socket, old.socket
            ));
            config.socket = old.socket.clone();
        }
        if config.tmux_client != old.tmux_client {
            kept.push(format!(
                "`tmux_client` changed to {:?}; vigil keeps its tmux client until it restarts",
                config.tmux_client.as_str()
            ));
            config.tmux_client = old.tmux_client;
        }
        if config.state_dir != old.state_dir {
            kept.push("`state_dir` changed; vigil keeps its state where it is until it restarts".to_owned());
            config.state_dir = old.state_dir.clone();
        }
        let reload = compare(old, &config);
        records.push(self.journal.append(now, Record::Reloaded(reload))?);
        for message in kept {
            records.push(self.journal.append(now, Record::Warning { message })?);
        }
        self.fleet = fleet_of(&config, &self.store);
        self.config = config;
        self.reconfigure_notifier();
        Ok(records)
    }
}

/// What differs between the running config and a new one, in the `reloaded` record.
fn compare(old: &Config, config: &Config) -> Reload {
    let names = |c: &Config| c.agents.iter().map(|a| a.name.to_string()).collect::<Vec<_>>();
    let added: Vec<String> = names(config).into_iter().filter(|n| old.agent(n).is_none()).collect();
    let removed: Vec<String> = names(old).into_iter().filter(|n| config.agent(n).is_none()).collect();
    let changes: Vec<(&AgentName, Vec<Setting>)> = config
        .agents
        .iter()
        .filter_map(|new| {
            let what = agent_changes(old.agent(new.name.as_str())?, new);
            (!what.is_empty()).then_some((&new.name, what))
        })
        .collect();
    let later = changes.iter().flat_map(|(_, what)| what).any(|s| s.at_next_start());
    let changed: Vec<String> = changes
        .iter()
        .map(|(name, what)| {
            let keys: Vec<&str> = what.iter().map(|s| s.as_str()).collect();
            format!("{name} ({})", keys.join(", "))
        })
        .collect();
    let mut summary = Vec::new();
    if config.poll_interval != old.poll_interval {
        summary.push(format!(
            "poll interval {} → {}",
            engine::time::human(old.poll_interval),
            engine::time::human(config.poll_interval)
        ));
    }
    if !added.is_empty() {
        summary.push(format!("added {} (started by the next pass)", added.join(", ")));
    }
    if !removed.is_empty() {
        summary.push(format!(
            "removed {} (left running, no longer supervised)",
            removed.join(", ")
        ));
    }
    if !changed.is_empty() {
        summary.push(format!(
            "changed {}{}",
            changed.join("; "),
            if later {
                " (a new command, cwd or env applies from that agent's next start)"
            } else {
                ""
            }
        ));
    }
    if config.journal_max_bytes != old.journal_max_bytes || config.journal_keep != old.journal_keep {
        summary.push("journal rotation changed".to_owned());
    }
    if config.start_limits != old.start_limits {
        summary.push("start limits changed (a deferred start is judged against them at the next pass)".to_owned());
    }
    let message = if summary.is_empty() {
        "config reloaded: nothing that matters changed".to_owned()
    } else {
        format!("config reloaded: {}; no agent was restarted", summary.join("; "))
    };
    Reload {
        path: config.path.clone(),
        added,
        removed,
        changed,
        poll_interval_ms: u64::try_from(config.poll_interval.as_millis()).unwrap_or(u64::MAX),
        message,
    }
}

/// One key of an agent's config, as a reload compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    Command,
    Cwd,
    Env,
    Preset,
    Policy,
    Patterns,
}

impl Setting {
    fn as_str(self) -> &'static str {
        match self {
            Setting::Command => "command",
            Setting::Cwd => "cwd",
            Setting::Env => "env",
            Setting::Preset => "preset",
            Setting::Policy => "policy",
            Setting::Patterns => "patterns",
        }
    }

    /// Whether a change takes effect only when the agent next starts.
    fn at_next_start(self) -> bool {
        matches!(self, Setting::Command | Setting::Cwd | Setting::Env)
    }
}

/// Which settings of one agent differ between two configs.
fn agent_changes(old: &AgentConfig, new: &AgentConfig) -> Vec<Setting> {
    let patterns = |a: &AgentConfig| {
        let p = &a.patterns;
        [&p.prompt, &p.busy, &p.waiting, &p.rate_limit, &p.volatile].map(|r| r.as_ref().map(|r| r.as_str().to_owned()))
    };
    [
        (old.command != new.command, Setting::Command),
        (old.cwd != new.cwd, Setting::Cwd),
        (old.env != new.env, Setting::Env),
        (old.preset != new.preset, Setting::Preset),
        (old.policy != new.policy, Setting::Policy),
        (
            patterns(old) != patterns(new) || old.patterns.menus != new.patterns.menus,
            Setting::Patterns,
        ),
    ]
    .into_iter()
    .filter_map(|(differs, setting)| differs.then_some(setting))
    .collect()
}
