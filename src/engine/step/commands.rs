//! The user's commands (`up`, `stop`, `restart`, `nudge`, `triage`), obeyed before
//! any judgement of vigil's own.

use super::Ctx;
use crate::engine::mind::{Activity, AgentRecord, EndedLifecycle, Incarnation, LastExit};
use crate::engine::screen::ScreenRead;
use crate::engine::{Action, Command, PaneSeen, Purpose};

impl Ctx<'_> {
    /// Carries out a user command; returns whether it acted (then nothing automatic
    /// happens to this agent in this step).
    pub(super) fn obey(
        &mut self,
        rec: &mut Option<AgentRecord>,
        pane: Option<&PaneSeen>,
        command: &Command,
        read: Option<&ScreenRead>,
    ) -> bool {
        match command {
            Command::Up(_) => self.up(rec, false),
            Command::Restart(_) => self.up(rec, true),
            Command::Stop(_) => self.stop(rec.as_mut(), pane),
            Command::Nudge(_) => rec.as_mut().is_some_and(|r| self.nudge(r)),
            Command::Triage(_) => rec.as_mut().is_some_and(|r| self.triage_now(r, read)),
        }
    }

    /// `up` starts an agent that is not running; `restart` replaces it either way.
    /// Both lift a `stop`.
    fn up(&mut self, rec: &mut Option<AgentRecord>, restart: bool) -> bool {
        self.stopped.remove(&self.agent.name);
        let how = if restart {
            "restart requested by the user"
        } else {
            "started by `vigil up`"
        };
        match rec.as_mut() {
            None => {
                let mut r = AgentRecord::new(Incarnation(1), self.agent.session.clone(), self.now, how.into());
                self.start(&mut r, how.into());
                *rec = Some(r);
                true
            }
            Some(r) if r.is_live() && !restart => {
                self.note(r, format!("`vigil up`: already running as {}", r.incarnation));
                false
            }
            Some(r) => {
                if r.is_live() {
                    let exit = LastExit::because("restarted by the user");
                    self.end(r, EndedLifecycle::Completed, exit);
                }
                self.start_next(r, how.into());
                true
            }
        }
    }

    /// Ends the incarnation as completed, kills its session if tmux shows one, and
    /// holds the agent stopped until `vigil up`.
    fn stop(&mut self, rec: Option<&mut AgentRecord>, pane: Option<&PaneSeen>) -> bool {
        let name = &self.agent.name;
        self.stopped.insert(name.clone());
        let Some(r) = rec else { return true };
        if r.is_live() {
            let exit = LastExit::because("stopped by the user");
            self.end(r, EndedLifecycle::Completed, exit);
        }
        r.reason = format!("stopped by the user; `vigil up {name}` starts it again");
        if pane.is_some() {
            self.out.actions.push(Action::Kill {
                agent: name.clone(),
                incarnation: r.incarnation,
                session: r.session.clone(),
                reason: "stop requested by the user".into(),
            });
        }
        true
    }

    /// A nudge the user asked for: typed unless the incarnation ended or a dialog
    /// waits for a human.
    fn nudge(&mut self, r: &mut AgentRecord) -> bool {
        if !r.is_live() {
            let reason = format!("nudge refused: {} is {}", r.incarnation, r.lifecycle().as_str());
            self.note(r, reason);
            false
        } else if r.activity() == Some(Activity::Waiting) {
            let reason = "nudge refused: a dialog is waiting for a human; attach and answer it".into();
            self.note(r, reason);
            false
        } else {
            self.send(r, Purpose::Nudge, "nudge requested by the user".into());
            true
        }
    }

    /// Triage the user asked for, whatever the escalation; its verdict is carried out
    /// whole (a restart included).
    fn triage_now(&mut self, r: &mut AgentRecord, read: Option<&ScreenRead>) -> bool {
        if !r.is_live() {
            let reason = format!("triage refused: {} is {}", r.incarnation, r.lifecycle().as_str());
            self.note(r, reason);
            return false;
        }
        let Some(read) = read else {
            self.note(r, "triage postponed: the screen could not be read this poll".into());
            return false;
        };
        self.triage(r, read, "triage requested by the user".into());
        if !r.is_live() {
            self.maybe_restart(r);
        }
        true
    }
}
