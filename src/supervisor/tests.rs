//! The supervisor against a fake tmux: passes, the inbox, a foreign session, a tmux
//! that cannot be listed, reloads.

use std::path::Path;

use super::*;
use crate::adapters::tmux::FakeTmux;
use crate::adapters::tmux::Pane;
use crate::engine::AgentName;
use crate::engine::{Action, Incarnation};
use crate::store::read_journal;
use crate::store::{Record, Role, Store};

fn config(dir: &Path) -> Config {
    let text = "[vigil]\npoll_interval = 1\n[[agent]]\nname = \"a\"\ncommand = [\"agent\"]\n[[agent]]\nname = \"b\"\ncommand = \"agent --b\"\n";
    Config::parse(text, &dir.join("vigil.toml")).unwrap()
}

fn t(s: i64) -> Time {
    Time::from_millis(1_800_000_000_000 + s * 1000)
}

#[test]
fn a_pass_starts_the_fleet_journals_intents_before_outcomes_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Tick, t(0)).unwrap();
    sup.pass(Vec::new(), true, t(0)).unwrap();
    let sessions = sup.tmux().sessions();
    assert_eq!(sessions.len(), 2);
    let spec = sup.tmux().session(&sessions[0]).unwrap().spec.unwrap();
    assert_eq!(spec.argv, ["sh", "-c", spawn::WRAPPER, "vigil-agent", "agent"]);
    assert_eq!(spec.incarnation, 1);

    let journal = read_journal(store.journal().path()).unwrap();
    let first_intent = journal
        .iter()
        .position(|e| matches!(e.record, Record::Intent { .. }))
        .unwrap();
    let Record::Intent { id, action } = &journal[first_intent].record else {
        unreachable!()
    };
    assert_eq!(
        journal[first_intent + 1].record,
        Record::Done { id: id.clone() },
        "{journal:?}"
    );
    assert!(matches!(action, Action::Start { .. }), "{action:?}");
    assert!(!action.reason().is_empty());

    let loaded = store.load_mind(t(1)).unwrap().mind;
    assert_eq!(&loaded, sup.mind());
}

#[test]
fn a_session_name_taken_by_someone_else_is_never_killed_and_the_agent_starts_under_the_next_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let taken = config.session_of(&AgentName::new("a").unwrap());
    let tmux = FakeTmux::default();
    for name in [taken.clone(), format!("{taken}-2")] {
        tmux.insert(Pane {
            session: name,
            pane_pid: 1,
            ..Pane::default()
        });
    }
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(config, tmux, store, Role::Tick, t(0)).unwrap();
    let records = sup.pass(Vec::new(), true, t(0)).unwrap();
    for name in [taken.clone(), format!("{taken}-2")] {
        assert!(sup.tmux().session(&name).unwrap().spec.is_none(), "{name} is untouched");
    }
    let third = format!("{taken}-3");
    assert!(sup.tmux().session(&third).unwrap().spec.is_some(), "started as {third}");
    assert!(
        !records.iter().any(|e| matches!(e.record, Record::Failed(_))),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|e| matches!(&e.record, Record::Note { reason, .. } if reason.contains(&third)))
    );
    sup.pass(Vec::new(), true, t(1)).unwrap();
    let a = &sup.mind().agents[&AgentName::new("a").unwrap()];
    assert!(a.is_live(), "{a:?}");
    assert_eq!(a.session, third, "the record follows the session found by its tags");
    assert!(a.crashes.is_empty());
}

#[test]
fn commands_left_in_the_inbox_are_carried_out_by_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Watch, t(0)).unwrap();
    sup.pass(Vec::new(), true, t(0)).unwrap();
    store
        .inbox()
        .submit(&Command::Stop(AgentName::new("b").unwrap()), t(1))
        .unwrap();
    let records = sup.pass(Vec::new(), true, t(2)).unwrap();
    assert!(records.iter().any(|e| matches!(
        &e.record,
        Record::Command { request: Command::Stop(b), .. } if b.as_str() == "b"
    )));
    assert_eq!(sup.tmux().sessions().len(), 1, "b was stopped");
    assert!(sup.mind().stopped.contains(&AgentName::new("b").unwrap()));
}

#[test]
fn when_tmux_cannot_be_listed_nothing_is_decided() {
    struct Broken;
    impl Tmux for Broken {
        fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
            Err(TmuxError::Failed {
                args: "list-panes".into(),
                stderr: "server exited unexpectedly".into(),
            })
        }
        fn capture(&self, _: &str, _: usize) -> Result<Vec<String>, TmuxError> {
            unreachable!()
        }
        fn send_text(&self, _: &str, _: &str) -> Result<(), TmuxError> {
            unreachable!()
        }
        fn spawn(&self, _: &crate::adapters::tmux::SpawnSpec) -> Result<(), TmuxError> {
            unreachable!("no start on missing facts")
        }
        fn kill(&self, _: &str) -> Result<(), TmuxError> {
            unreachable!()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(config(dir.path()), Broken, store, Role::Tick, t(0)).unwrap();
    assert!(matches!(
        sup.pass(Vec::new(), true, t(0)),
        Err(SupervisorError::Observe(_))
    ));
    assert!(sup.mind().agents.is_empty());
}

#[test]
fn an_agent_named_envoy_whose_policy_changed_applies_it_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let text = |checks: u32| {
        format!(
            "[vigil]\npoll_interval = 1\n[[agent]]\nname = \"envoy\"\ncommand = [\"agent\"]\nidle_checks = {checks}\n"
        )
    };
    let parse = |t: String| Config::parse(&t, &dir.path().join("vigil.toml")).unwrap();
    let (mut sup, _) = Supervisor::claim(parse(text(3)), FakeTmux::default(), store, Role::Watch, t(0)).unwrap();
    let records = sup.reload(parse(text(9)), t(1)).unwrap();
    let Record::Reloaded(reloaded) = &records[0].record else {
        panic!("{records:?}")
    };
    assert_eq!(reloaded.changed, ["envoy (policy)"]);
    assert!(
        !reloaded.message.contains("next start"),
        "a policy applies from the next pass: {}",
        reloaded.message
    );
}

#[test]
fn a_reload_applies_the_new_config_without_restarting_any_agent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(
        config(dir.path()),
        FakeTmux::default(),
        store.clone(),
        Role::Watch,
        t(0),
    )
    .unwrap();
    sup.pass(Vec::new(), true, t(0)).unwrap();
    let before = sup.tmux().sessions();
    let text = "[vigil]\npoll_interval = 2\nsocket = \"elsewhere\"\n\
                [[agent]]\nname = \"a\"\ncommand = [\"agent\", \"--new-flag\"]\nidle_checks = 9\n\
                [[agent]]\nname = \"c\"\ncommand = \"agent --c\"\n";
    let new = Config::parse(text, &dir.path().join("vigil.toml")).unwrap();
    let records = sup.reload(new, t(1)).unwrap();
    let Record::Reloaded(reloaded) = &records[0].record else {
        panic!("{records:?}")
    };
    assert_eq!(reloaded.added, ["c"]);
    assert_eq!(reloaded.removed, ["b"]);
    assert_eq!(reloaded.changed, ["a (command, policy)"]);
    assert!(
        matches!(&records[1].record, Record::Warning { message } if message.contains("`socket` changed")),
        "{records:?}"
    );
    assert_eq!(
        sup.config().socket,
        None,
        "the socket cannot move under a running owner"
    );
    assert_eq!(sup.config().poll_interval, std::time::Duration::from_secs(2));

    // Reloading touches nothing in tmux; the next pass starts c (the real-tmux test
    // in tests/it/systemd.rs shows a and b keep their processes).
    assert_eq!(sup.tmux().sessions(), before);
    assert_eq!(
        sup.mind().agents[&AgentName::new("a").unwrap()].incarnation,
        Incarnation(1)
    );
    sup.pass(Vec::new(), true, t(2)).unwrap();
    assert!(sup.tmux().sessions().iter().any(|s| s.ends_with("-c")), "c was started");
}

#[test]
fn every_letter_is_answered_once_its_pass_shows_how_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Watch, t(0)).unwrap();
    sup.pass(Vec::new(), false, t(0)).unwrap();
    let name = |n: &str| AgentName::new(n).unwrap();
    let inbox = store.inbox();
    let up_a = inbox.submit(&Command::Up(name("a")), t(1)).unwrap();
    let nudge_b = inbox.submit(&Command::Nudge(name("b")), t(1)).unwrap();
    let old = inbox.submit(&Command::Stop(name("b")), t(-700)).unwrap();
    let answers = store.answers();

    sup.pass(Vec::new(), false, t(2)).unwrap();
    let expired = answers.collect(&old).unwrap().unwrap();
    assert_eq!(expired.outcome, crate::store::AnswerOutcome::Expired, "{expired:?}");
    assert!(expired.reason.starts_with("expired: sent 11m42s ago"), "{expired:?}");
    let refused = answers.collect(&nudge_b).unwrap().unwrap();
    assert_eq!(refused.outcome, crate::store::AnswerOutcome::Refused, "{refused:?}");
    assert_eq!(
        answers.collect(&up_a).unwrap(),
        None,
        "a start is answered once it settled"
    );
    assert_eq!(sup.tmux().sessions().len(), 1, "a started, the old stop not obeyed");

    let records = sup.pass(Vec::new(), false, t(3)).unwrap();
    let started = answers.collect(&up_a).unwrap().unwrap();
    assert_eq!(
        (started.outcome, started.incarnation),
        (crate::store::AnswerOutcome::Started, Some(Incarnation(1))),
        "{started:?}"
    );
    assert!(
        records
            .iter()
            .any(|e| matches!(&e.record, Record::Answered(a) if a.letter == up_a))
    );
    let journal = read_journal(store.journal().path()).unwrap();
    assert!(journal.iter().any(|e| matches!(
        &e.record,
        Record::LetterRefused { letter, refusal: crate::store::Refusal::Expired { age_s: 702 }, .. } if *letter == old
    )));
    assert!(std::fs::read_dir(store.path("inbox")).unwrap().next().is_none());
}

#[test]
fn a_letter_journaled_by_an_owner_that_died_before_deleting_it_is_not_obeyed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(
        config(dir.path()),
        FakeTmux::default(),
        store.clone(),
        Role::Watch,
        t(0),
    )
    .unwrap();
    sup.pass(Vec::new(), false, t(0)).unwrap();
    let stop = Command::Stop(AgentName::new("b").unwrap());
    let id = store.inbox().submit(&stop, t(1)).unwrap();
    // The dead owner got as far as the journal.
    let taken = Record::Command {
        from: crate::store::record::CommandSource::Inbox,
        request: stop,
        letter: Some(id.clone()),
    };
    store.journal().append(t(1), taken).unwrap();
    drop(sup);
    let (mut sup, _) = Supervisor::claim(
        config(dir.path()),
        FakeTmux::default(),
        store.clone(),
        Role::Watch,
        t(2),
    )
    .unwrap();
    let records = sup.pass(Vec::new(), false, t(3)).unwrap();
    assert!(
        !sup.mind().stopped.contains(&AgentName::new("b").unwrap()),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|e| matches!(&e.record, Record::Warning { message } if message.contains("not obeyed twice")))
    );
    assert!(store.inbox().is_empty());
}

#[test]
fn the_snapshot_waits_for_the_disk_only_when_something_was_journaled_since_the_last_synced_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&dir.path().join("state")).unwrap();
    let (mut sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Tick, t(0)).unwrap();
    sup.pass(Vec::new(), true, t(0)).unwrap();
    assert!(sup.synced_at.is_some(), "the first snapshot is synced");
    // (journal appends before the pass, after it, the count last synced after it)
    let passes: Vec<(u64, u64, Option<u64>)> = (1..20)
        .map(|s| {
            let before = sup.journal.appended();
            sup.pass(Vec::new(), true, t(s)).unwrap();
            (before, sup.journal.appended(), sup.synced_at)
        })
        .collect();
    // Only passes that journaled nothing themselves: whether they synced depends on
    // what the passes before them journaled after their snapshots.
    for (i, &(before, after, synced)) in passes.iter().enumerate().skip(1) {
        let last_synced = passes[i - 1].2;
        if before != after {
            continue;
        }
        if last_synced == Some(before) {
            assert_eq!(synced, last_synced, "pass {i}: nothing journaled since the last sync");
        } else {
            assert_eq!(
                synced,
                Some(before),
                "pass {i}: journaled since the last sync, so synced"
            );
        }
    }
    assert!(
        passes.windows(2).any(|w| w[0].2 == w[1].2),
        "some pass saved without syncing: {passes:?}"
    );
    // Written all the same: readers see the last pass's counters.
    assert_eq!(&store.load_mind(t(99)).unwrap().mind, sup.mind());
}
