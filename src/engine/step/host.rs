//! Host failures: tmux's server lost (gone, replaced by another, or found gone when an
//! owner takes over) under a live fleet is one event for the fleet, journaled once.
//! Each live incarnation it took ends with the host as its typed cause — checkpointed,
//! no crash counted, no failure in a row — and the fleet comes back after the host
//! backoff, each agent with a handoff. No IO here.

use super::Ctx;
use crate::engine::HostEvent;
use crate::engine::host::{Host, HostFailure};
use crate::engine::mind::{AgentName, AgentRecord, EndedLifecycle, Hold, LastExit, Lifecycle, Mind, Wait};
use crate::engine::policy::{HOST_STABLE_AFTER, host_backoff};
use crate::engine::time::{Time, human};
use crate::engine::{Fleet, Inputs, What};

/// A host failure noticed in this step, as the agents' steps need it.
#[derive(Clone, Debug)]
pub(super) struct Outage {
    pub failure: HostFailure,
    /// The agents whose live incarnation it ended.
    pub agents: Vec<AgentName>,
    pub outages: u32,
    pub back_at: Time,
}

/// Whether this step sees a host failure: the server gone (or another in its place)
/// while agents recorded live, and seen running, have no session. Remembers the server
/// seen and, on a failure, counts it for the host backoff. A failure is noticed once:
/// it ends every incarnation it took, so the next pass finds none live to lose.
pub(super) fn notice(mind: &mut Mind, fleet: &Fleet, inputs: &Inputs, now: Time) -> Option<(Outage, HostEvent)> {
    let obs = &inputs.observation;
    let recorded = mind.host.server;
    let lost_server = match obs.host {
        Host::ServerGone => {
            mind.host.server = None;
            true
        }
        Host::Up { server: Some(id) } => {
            mind.host.server = Some(id);
            recorded.is_some_and(|r| r != id)
        }
        Host::Up { server: None } => false,
    };
    if !lost_server {
        return None;
    }
    let agents: Vec<AgentName> = fleet
        .agents
        .iter()
        .filter(|a| {
            mind.agents
                .get(&a.name)
                .is_some_and(|r| r.is_live() && r.pane_pid.is_some())
                && !obs.panes.iter().any(|p| p.agent == a.name.as_str())
        })
        .map(|a| a.name.clone())
        .collect();
    if agents.is_empty() {
        return None;
    }
    let failure = if inputs.first_look {
        HostFailure::HostRestart
    } else if obs.host == Host::ServerGone {
        HostFailure::ServerGone
    } else {
        HostFailure::ServerReplaced
    };
    let host = &mut mind.host;
    if host.last_outage.is_some_and(|t| now.since(t) >= HOST_STABLE_AFTER) {
        host.outages = 0;
    }
    host.outages = host.outages.saturating_add(1);
    host.last_outage = Some(now);
    let wait = host_backoff(host.outages);
    let back_at = now.plus(wait);
    let names: Vec<&str> = agents.iter().map(AgentName::as_str).collect();
    let what = match failure {
        HostFailure::ServerGone => "no tmux server answers any more".to_owned(),
        HostFailure::ServerReplaced => "another tmux server answers, without the fleet's sessions".to_owned(),
        HostFailure::HostRestart => {
            "no tmux server with the fleet's sessions when vigil took over (a reboot, or the server lost with its owner)"
                .to_owned()
        }
    };
    let when = if wait.is_zero() {
        "bringing the fleet back now".to_owned()
    } else {
        format!(
            "host failure {} in a row: bringing the fleet back in {}, at {}",
            host.outages,
            human(wait),
            back_at.clock_in(&inputs.tz)
        )
    };
    let reason = format!(
        "{}: {what}; {} live agent(s) lost with it ({}), not counted as crashes; {when}, each with a checkpoint handoff",
        failure.words(),
        agents.len(),
        names.join(", ")
    );
    let event = HostEvent {
        failure,
        agents: agents.clone(),
        outages: host.outages,
        back_at,
        reason,
    };
    let outage = Outage {
        failure,
        agents,
        outages: host.outages,
        back_at,
    };
    Some((outage, event))
}

impl Ctx<'_> {
    /// Ends a live incarnation the host failure took: a zombie whose exit names the
    /// host, checkpointed for its handoff, held by the host backoff. Its crash window
    /// and failures in a row are left alone: it did not fail, its host did. Returns
    /// whether the outage took it.
    pub(super) fn end_by_host(&mut self, r: &mut AgentRecord) -> bool {
        let Some(outage) = self.host else { return false };
        if !r.is_live() || !outage.agents.contains(&self.agent.name) {
            return false;
        }
        let reason = match outage.failure {
            HostFailure::ServerGone => "its tmux server is gone (host failure, not a crash of its own)",
            HostFailure::ServerReplaced => {
                "its tmux server was replaced by another (host failure, not a crash of its own)"
            }
            HostFailure::HostRestart => {
                "its tmux server was gone when vigil took over (host restart, not a crash of its own)"
            }
        };
        self.checkpoint(r, reason);
        if self.now.since(r.since) >= self.agent.policy.stable_after {
            r.failures_in_row = 0;
        }
        let exit = LastExit {
            host: Some(outage.failure),
            ..LastExit::because(reason)
        };
        let hold = Hold::Until {
            at: outage.back_at,
            cause: Wait::Host {
                outages: outage.outages,
            },
        };
        r.finish(EndedLifecycle::Zombie, exit, Some(hold));
        r.reason = format!("zombie: {reason}");
        self.event(r, What::Lifecycle(Lifecycle::Zombie), reason.to_owned());
        true
    }
}
