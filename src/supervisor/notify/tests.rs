use std::path::Path;

use super::*;
use crate::config::notify::NotifyConfig;
use crate::engine::Alert;

fn channels(dir: &Path, script: &str, max_per_minute: u32) -> Channels {
    Channels {
        config: NotifyConfig {
            command: Some(vec!["sh".into(), "-c".into(), script.into()]),
            max_per_minute,
            ..NotifyConfig::default()
        },
        cwd: dir.to_owned(),
        tmux: crate::adapters::tmux::TmuxCli::new(Some("vigil-test-none".into())),
    }
}

fn waiting(agent: &str) -> Notice {
    let mut n = notice(
        "p",
        NoticeKind::Raised(Alert::Waiting),
        Time::from_millis(1000),
        "dialog".into(),
    );
    n.agent = Some(agent.into());
    n
}

fn wait_reports(n: &Notifier, count: usize) -> Vec<Report> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < count && Instant::now() < deadline {
        got.extend(n.collect());
        std::thread::sleep(Duration::from_millis(20));
    }
    got
}

#[test]
fn a_posted_notice_is_delivered_on_stdin_and_leaves_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("got");
    let outbox = Outbox::new(dir.path().join("outbox"));
    let n = Notifier::start(outbox.clone(), channels(dir.path(), "cat >> got; echo >> got", 10));
    let notice = waiting("a");
    n.post(notice.clone()).unwrap();
    let reports = wait_reports(&n, 1);
    assert!(
        matches!(&reports[..], [Report::Delivery(Delivery { outcome: DeliveryOutcome::Delivered, channel, .. })] if channel == "command"),
        "{reports:?}"
    );
    let line = std::fs::read_to_string(got).unwrap();
    let back: Notice = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(back, notice);
    assert!(outbox.list().0.is_empty(), "gone once delivered");
}

#[test]
fn a_failed_delivery_stays_in_the_outbox_with_its_attempt_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(dir.path().join("outbox"));
    let n = Notifier::start(outbox.clone(), channels(dir.path(), "echo no receiver >&2; exit 3", 10));
    n.post(waiting("a")).unwrap();
    let reports = wait_reports(&n, 1);
    let Report::Delivery(Delivery {
        outcome: DeliveryOutcome::Failed {
            error,
            attempt: 1,
            retry_in_s,
        },
        ..
    }) = &reports[0]
    else {
        panic!("{reports:?}")
    };
    assert!(error.contains("no receiver"), "{error}");
    assert_eq!(*retry_in_s, 2);
    let (left, _) = outbox.list();
    assert_eq!((left.len(), left[0].attempts), (1, 1));
}

#[test]
fn a_storm_past_the_rate_cap_goes_as_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(dir.path().join("outbox"));
    for agent in ["a", "b", "c", "d", "e"] {
        outbox
            .post(&Pending::new(waiting(agent), vec!["command".into()]))
            .unwrap();
    }
    let n = Notifier::start(outbox.clone(), channels(dir.path(), "cat >> got; echo >> got", 2));
    let reports = wait_reports(&n, 3);
    assert_eq!(reports.len(), 3, "{reports:?}");
    let got = std::fs::read_to_string(dir.path().join("got")).unwrap();
    let events: Vec<Notice> = got.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].event, NoticeKind::Digest);
    assert_eq!(events[2].digest.len(), 3, "{:?}", events[2]);
    assert!(outbox.list().0.is_empty(), "all five are done");
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(2), Duration::from_secs(4));
    assert_eq!(backoff(20), LONGEST_RETRY);
}
