//! Looking at this run's tagged panes: their state from tmux and /proc (re-read
//! briefly while one is between exit and reaping) and their last lines, as the
//! engine's [`Observation`]. Reads only; decides nothing.
//!
//! A live pane whose window has printed nothing since its last capture (tmux's
//! `#{window_activity}`, whole seconds, moves on output only) and whose size is the
//! same shows the screen captured then: that screen is handed on without asking tmux
//! again, so an idle fleet costs one `list-panes` a pass. Whole seconds are why the
//! output must predate the second the capture began in; a minute at most goes by
//! between two real captures, whatever the window says.

use std::collections::HashMap;
use std::time::Instant;

use super::{SETTLE_TRIES, SETTLE_WAIT, Supervisor};
use crate::adapters::proctree::Proc;
use crate::adapters::tmux::Pane;
use crate::adapters::tmux::{Listing, Tmux, TmuxError};
use crate::engine::screen;
use crate::engine::{Exit, FleetAgent, Host, Incarnation, Observation, PaneSeen, PaneState, TreeSeen};

/// The process of each live pane, by its pid, as read while the listing settled, and
/// the wall-clock second the pass looks in (taken before any capture of it: output in
/// that second is captured again).
pub(super) struct Roots {
    procs: std::collections::HashMap<u32, Root>,
    second: i64,
}

/// A live pane's process, and whether it is its tree's last reading's (which this pass
/// then hands on, decided once while settling).
struct Root {
    proc: Proc,
    standing: bool,
}

/// The longest a live pane's screen goes without a real capture.
const RECAPTURE_AFTER_SECS: i64 = 60;

/// The last screen captured of a session, and what its window said then.
#[derive(Clone, Debug, Default)]
pub(super) struct Screen {
    pub lines: screen::Tail,
    /// `#{window_activity}` in the listing the capture was made from.
    activity: Option<i64>,
    /// The wall-clock second the capture began in.
    second: i64,
    size: Option<(u16, u16)>,
    /// How many lines were asked for (a reload may change `tail_lines`).
    asked: usize,
}

impl Screen {
    /// Whether `pane` cannot show anything else than this capture at `second`: no
    /// output since (the activity is the one seen then, and older than the capture's
    /// second), the same size, the same lines asked for, and not too long ago. A clock
    /// set back makes the next output's activity differ, which recaptures.
    fn still_shown(&self, pane: &Pane, lines: usize, second: i64) -> bool {
        let Some(activity) = pane.activity else { return false };
        self.activity == Some(activity)
            && activity < self.second
            && self.size == pane.size
            && self.asked == lines
            && (0..recapture_after(&pane.session)).contains(&(second - self.second))
    }
}

/// How long `session`'s still screen is trusted: between half of
/// [`RECAPTURE_AFTER_SECS`] and all of it, by its name, so a fleet started in one pass
/// is not captured again all in one pass a minute later (a thousand captures at once).
fn recapture_after(session: &str) -> i64 {
    let spread = session
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let half = RECAPTURE_AFTER_SECS / 2;
    half + i64::from(spread) % half
}

/// One pane of ours as this pass found it, before its screen is read.
struct Look<'a> {
    pane: &'a Pane,
    agent: String,
    incarnation: Incarnation,
    root: Option<Root>,
    state: PaneState,
    tail: Tail,
    /// Its screen printed since the last capture, and was judged changed the pass before.
    printing: bool,
}

/// Where a pane's last lines come from this pass.
enum Tail {
    /// Not read: not an agent of this fleet, or a pane whose last words were read.
    None,
    /// Nothing printed since the last capture: its lines.
    Kept(screen::Tail),
    /// Captured now, this many lines.
    Capture(usize),
}

/// The wall clock's second now, as tmux counts `window_activity` (never skewed).
fn wall_second() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Looks (`SETTLE_WAIT` apart) at a server that answers with no session at all while
/// the fleet had panes, before believing it stays up.
const EXITING_SERVER_TRIES: usize = 10;

impl<T: Tmux> Supervisor<T> {
    /// All panes, looked at again (briefly) while one of ours is between exiting and
    /// being reaped: tmux marks a pane dead when its pty closes, a moment before it
    /// knows the exit status, and a process can be gone a moment before tmux notices.
    /// Judging in that moment would call a clean exit a crash.
    ///
    /// Returns the listing and the process of each live pane of ours, read while
    /// settling ([`Roots`]), so a pass reads each pane's `stat` once.
    ///
    /// The first look may be a glance ([`Tmux::survey`]), which tells no process
    /// ended: a live pane whose process is gone, or is another process under the same
    /// pid, is in flux, and every later look is a full listing.
    pub(super) fn settled_panes(&mut self) -> Result<(Listing, Roots), TmuxError> {
        let second = wall_second();
        let mut listing = self.tmux.survey()?;
        let mut roots = Roots {
            procs: std::collections::HashMap::new(),
            second,
        };
        let run = self.fleet.run.clone();
        // The first look may be a glance, looked at again at once as a full listing;
        // then SETTLE_TRIES more, SETTLE_WAIT apart.
        let last = SETTLE_TRIES + 1;
        for attempt in 0..=last {
            roots.procs.clear();
            let mut in_flux = false;
            for p in listing.panes.iter().filter(|p| p.is_ours(&run)) {
                if p.dead {
                    in_flux |= p.exit_tag.is_none() && p.dead_status.is_none() && p.dead_signal.is_none();
                } else if let Some(proc) = self.standing_root(p, second) {
                    roots.procs.insert(p.pane_pid, Root { proc, standing: true });
                } else if let Some(proc) = self.trees.read(p.pane_pid) {
                    // A pid taken again since the last reading, which only a glance
                    // can list (a full listing names the pane's process now).
                    in_flux |= attempt == 0 && self.trees.root_replaced(&p.session, &proc);
                    roots.procs.insert(p.pane_pid, Root { proc, standing: false });
                } else {
                    in_flux = true;
                }
            }
            if !in_flux || attempt == last {
                break;
            }
            if attempt > 0 {
                std::thread::sleep(SETTLE_WAIT);
            }
            listing = self.tmux.survey_afresh()?;
        }
        Ok((self.until_exited(listing)?, roots))
    }

    /// The pane's process, without reading /proc, when this pass will hand its tree's
    /// last reading on ([`super::trees::Trees::standing_root`]): its screen still at
    /// `second`, its tree quiet, its process running by its pidfd.
    fn standing_root(&mut self, pane: &Pane, second: i64) -> Option<Proc> {
        let policy = &self.config.agent(pane.agent.as_deref()?)?.policy;
        let busy_cpu = policy.busy_cpu;
        let still = self
            .screens
            .get(&pane.session)?
            .still_shown(pane, policy.tail_lines, second);
        still
            .then(|| {
                self.trees
                    .standing_root(&pane.session, pane.pane_pid, busy_cpu, Instant::now())
            })
            .flatten()
    }

    /// A server being killed drops every session a moment before it exits, and answers
    /// meanwhile with none: looked at again until it has gone (a host failure) or
    /// plainly stays up with no session (the agents' deaths).
    fn until_exited(&self, mut listing: Listing) -> Result<Listing, TmuxError> {
        for _ in 0..EXITING_SERVER_TRIES {
            let empty = matches!(listing.host, Host::Up { .. }) && listing.panes.is_empty();
            let had_panes = self.mind.agents.values().any(|r| r.is_live() && r.pane_pid.is_some());
            if !(empty && had_panes) {
                break;
            }
            std::thread::sleep(SETTLE_WAIT);
            listing = self.tmux.survey_afresh()?;
        }
        Ok(listing)
    }

    /// Which server answers now, after a session vanished between the listing and its
    /// capture: it may have gone with its server. Panes of a server that is no longer
    /// the one listed are not seen.
    fn host_after_vanishing(&self, listing: &Listing, seen: &mut Vec<PaneSeen>) -> Host {
        let Ok(again) = self.tmux.survey_afresh().and_then(|l| self.until_exited(l)) else {
            return listing.host;
        };
        if again.host != listing.host {
            seen.retain(|p| again.panes.iter().any(|q| q.session == p.session));
        }
        again.host
    }

    /// What tmux and /proc say about this run's tagged panes, and whether a server
    /// answered. The screens read are remembered, for a checkpoint written once the
    /// server that showed them is gone.
    pub(super) fn observe(&mut self, listing: &Listing, mut roots: Roots) -> (Observation, Vec<String>) {
        let mut seen = Vec::new();
        let mut problems = Vec::new();
        let mut vanished = false;
        let second = roots.second;
        // First what each pane is and needs, then every capture of the pass at once.
        let mut looks = Vec::new();
        let agents: HashMap<&str, &FleetAgent> = self.fleet.agents.iter().map(|a| (a.name.as_str(), a)).collect();
        for pane in listing.panes.iter().filter(|p| p.is_ours(&self.fleet.run)) {
            let Some(agent) = pane.agent.clone() else { continue };
            let incarnation = Incarnation(pane.incarnation.unwrap_or(0));
            // The pane's process, read once: alive or not, and the root of its tree.
            let root = if pane.dead {
                None
            } else {
                roots.procs.remove(&pane.pane_pid).or_else(|| {
                    let proc = self.trees.read(pane.pane_pid)?;
                    Some(Root { proc, standing: false })
                })
            };
            let state = if pane.dead {
                // The wrapper's record first: tmux sometimes never learns the status.
                PaneState::Dead(match (pane.exit_tag, pane.dead_status, pane.dead_signal) {
                    (Some(code), _, _) | (None, Some(code), _) => Exit::Code(code),
                    (None, None, Some(signal)) => Exit::Signal(signal),
                    (None, None, None) => Exit::Unknown,
                })
            } else if root.is_some() {
                PaneState::Alive
            } else {
                PaneState::ProcessGone
            };
            let fleet_agent = agents.get(agent.as_str()).copied();
            let record = fleet_agent.and_then(|a| self.mind.agents.get(&a.name));
            let recorded_live = record.is_some_and(|r| r.is_live() && r.incarnation <= incarnation);
            // Alive panes are read every poll; a dead one only once, for its last words.
            let wants_tail = fleet_agent.is_some()
                && match state {
                    PaneState::Alive => true,
                    PaneState::Dead(_) => recorded_live,
                    PaneState::ProcessGone => false,
                };
            let lines = fleet_agent.map_or(30, |a| a.policy.tail_lines);
            let kept = self
                .screens
                .get(&pane.session)
                .filter(|s| state == PaneState::Alive && s.still_shown(pane, lines, second))
                .map(|s| s.lines.clone());
            // The tree is evidence for a still screen (busy off-screen) and for an
            // agent named by a `process` pattern; a screen that prints, and was judged
            // changed the pass before, needs neither, and its tree waits for a still one
            // (whose CPU is then measured since the last reading, however old). A
            // still screen's quiet tree is read again only every `trees::QUIET_FOR`
            // (its root then standing, decided while settling).
            let printing = kept.is_none()
                && record.is_some_and(|r| r.incarnation == incarnation && r.is_live() && r.unchanged_checks() == 0);
            looks.push(Look {
                pane,
                agent,
                incarnation,
                root,
                state,
                tail: match (wants_tail, kept) {
                    (false, _) => Tail::None,
                    (true, Some(kept)) => Tail::Kept(kept),
                    (true, None) => Tail::Capture(lines),
                },
                printing,
            });
        }
        let asks: Vec<(&str, usize)> = looks
            .iter()
            .filter_map(|l| match l.tail {
                Tail::Capture(lines) => Some((l.pane.session.as_str(), lines)),
                _ => None,
            })
            .collect();
        let mut captures = self.tmux.capture_each(&asks).into_iter();
        for look in looks {
            let pane = look.pane;
            let tail = match look.tail {
                Tail::None => None,
                Tail::Kept(lines) => Some(lines),
                Tail::Capture(lines) => match captures.next() {
                    Some(Ok(t)) => {
                        let t = screen::Tail::new(t);
                        let screen = Screen {
                            lines: t.clone(),
                            activity: pane.activity,
                            second,
                            size: pane.size,
                            asked: lines,
                        };
                        self.screens.insert(pane.session.clone(), screen);
                        Some(t)
                    }
                    // Gone between the listing and the capture: not seen at all.
                    Some(Err(TmuxError::NoSuchSession(_))) => {
                        vanished = true;
                        continue;
                    }
                    Some(Err(e)) => {
                        problems.push(format!(
                            "cannot read the screen of `{}`: {e}; screen unjudged this poll",
                            pane.session
                        ));
                        None
                    }
                    None => {
                        problems.push(format!(
                            "no answer to the capture of `{}`; screen unjudged this poll",
                            pane.session
                        ));
                        None
                    }
                },
            };
            let now = Instant::now();
            let tree = match (look.root, self.config.agent(&look.agent)) {
                // A standing root's screen is still, so its tree is wanted: the last
                // reading, handed on.
                (Some(root), Some(config)) if config.process.is_some() || !look.printing => {
                    let handed = root.standing.then(|| self.trees.hand_on(&pane.session, now)).flatten();
                    handed.unwrap_or_else(|| {
                        self.trees
                            .look_under(&pane.session, root.proc, config.process.as_ref(), now)
                    })
                }
                _ => TreeSeen::default(),
            };
            seen.push(PaneSeen {
                session: pane.session.clone(),
                agent: look.agent,
                incarnation: look.incarnation,
                pane_pid: pane.pane_pid,
                state: look.state,
                tail,
                tree,
            });
        }
        let host = if vanished {
            self.host_after_vanishing(listing, &mut seen)
        } else {
            listing.host
        };
        // Kept while its record is live: a server gone this pass took the screen with it.
        let listed: std::collections::HashSet<&str> = seen.iter().map(|p| p.session.as_str()).collect();
        let live: std::collections::HashSet<&str> = (self.mind.agents.values())
            .filter(|r| r.is_live())
            .map(|r| r.session.as_str())
            .collect();
        self.screens
            .retain(|session, _| listed.contains(session.as_str()) || live.contains(session.as_str()));
        self.trees.retain(|session| listed.contains(session));
        let observation = Observation { panes: seen, host };
        (observation, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn still_screens_of_a_fleet_are_recaptured_spread_over_half_a_minute_not_all_at_once() {
        let after: Vec<i64> = (0..1000).map(|i| recapture_after(&format!("vigil-a{i:04}"))).collect();
        assert!(
            after
                .iter()
                .all(|s| (RECAPTURE_AFTER_SECS / 2..RECAPTURE_AFTER_SECS).contains(s))
        );
        let same_second = after.iter().filter(|s| **s == after[0]).count();
        assert!(same_second < 100, "{same_second} of 1000 share one second");
    }
}
