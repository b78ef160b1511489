//! `vigil metrics` and `[vigil] metrics_file` on a real fleet: the text passes a
//! Prometheus text-format parser (and `promtool check metrics` where it is installed),
//! says what `vigil status` says, and a metrics file that cannot be written is one
//! journal warning, never a stop.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::harness::*;

/// The samples of `text`, parsed by a Prometheus text-format parser: `name{labels}`
/// (labels sorted, without `project`) → value. Panics, with the text, on a parse error.
fn parsed(text: &str) -> std::collections::BTreeMap<String, f64> {
    use openmetrics_parser::PrometheusValue;
    use openmetrics_parser::prometheus::parse_prometheus;
    let exposition = parse_prometheus(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let mut samples = std::collections::BTreeMap::new();
    for (name, family) in exposition.families {
        for sample in family.iter_samples() {
            let labelset = sample.get_labelset().unwrap();
            let mut labels: Vec<String> = labelset
                .iter()
                .filter(|(n, _)| *n != "project")
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            labels.sort();
            let value = match &sample.value {
                PrometheusValue::Gauge(g) => g.as_f64(),
                PrometheusValue::Counter(c) => c.value.as_f64(),
                other => panic!("unexpected sample {other:?}"),
            };
            samples.insert(format!("{name}{{{}}}", labels.join(",")), value);
        }
    }
    samples
}

/// `promtool check metrics` on `text`, when promtool is on PATH (it lints names and
/// help too); says it skipped otherwise.
fn promtool_agrees(text: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: promtool is not installed");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

#[test]
fn the_owner_rewrites_a_metrics_file_each_pass_that_parses_and_agrees_with_vigil_metrics() {
    let body = format!(
        "metrics_file = \"textfile/vigil.prom\"\n\n{}{}",
        agent("worker", "worker.sh", ""),
        agent("spare", "worker.sh", "")
    );
    let mut w = World::new(&body);
    let textfile = w.dir.path().join("textfile");
    std::fs::create_dir(&textfile).unwrap();
    assert_eq!(w.vigil(&["stop", "spare"]).status.code(), Some(0));
    w.watch();
    let file = textfile.join("vigil.prom");
    let samples = w.eventually(
        Duration::from_secs(20),
        "the worker working in the metrics file",
        || {
            let text = std::fs::read_to_string(&file).ok()?;
            let samples = parsed(&text);
            (samples.get("vigil_agents{lifecycle=working}") == Some(&1.0)).then_some(samples)
        },
    );
    assert_eq!(samples["vigil_owner_up{}"], 1.0);
    assert_eq!(samples["vigil_owner_degraded{}"], 0.0);
    assert_eq!(samples["vigil_agents{lifecycle=not_started}"], 1.0, "{samples:?}");
    assert_eq!(samples["vigil_agent_incarnation{agent=worker}"], 1.0);
    assert_eq!(samples["vigil_agent_restarts_total{agent=worker}"], 0.0);
    assert_eq!(samples["vigil_notifications_pending{}"], 0.0);
    assert!(samples["vigil_pass_duration_seconds{}"] >= 0.0);
    let info = samples
        .keys()
        .find(|k| k.starts_with("vigil_agent_info{") && k.contains("agent=spare"))
        .unwrap_or_else(|| panic!("{samples:?}"));
    assert!(info.contains("stopped=true"), "{info}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "a collector running as another user reads it");
    let leftovers: Vec<_> = std::fs::read_dir(&textfile)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "vigil.prom")
        .collect();
    assert!(
        leftovers.iter().all(|n| n.starts_with('.')),
        "nothing the collector would read but the file: {leftovers:?}"
    );
    promtool_agrees(&std::fs::read_to_string(&file).unwrap());

    let out = w.vigil(&["metrics"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let printed = parsed(&text);
    promtool_agrees(&text);
    assert_eq!(printed["vigil_owner_up{}"], 1.0);
    assert_eq!(printed["vigil_agents{lifecycle=working}"], 1.0);
    assert!(printed["vigil_heartbeat_age_seconds{}"] < 30.0, "{printed:?}");

    w.stop_watch();
    let printed = parsed(&String::from_utf8(w.vigil(&["metrics"]).stdout).unwrap());
    assert_eq!(printed["vigil_owner_up{}"], 0.0, "no owner once it stopped");
    let left = parsed(&std::fs::read_to_string(&file).unwrap());
    assert!(
        left["vigil_heartbeat_timestamp_seconds{}"] > 1.7e9,
        "the file a stopped owner left says when it last beat: {left:?}"
    );
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_one_warning_and_supervision_goes_on() {
    let body = format!(
        "metrics_file = \"missing-dir/vigil.prom\"\n\n{}",
        agent("worker", "worker.sh", "")
    );
    let mut w = World::new(&body);
    w.watch();
    w.wait_for("worker", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    wait_out(Duration::from_secs(2), "ten more passes at 200ms");
    let warnings = |w: &World, what: &str| {
        w.journal()
            .iter()
            .filter(|e| matches!(&e.record, Record::Warning { message } if message.contains(what)))
            .count()
    };
    assert_eq!(
        warnings(&w, "cannot write the metrics file"),
        1,
        "said once, not every pass"
    );
    std::fs::create_dir(w.dir.path().join("missing-dir")).unwrap();
    w.wait_journal(
        20,
        "the metrics file written again",
        |e| matches!(&e.record, Record::Warning { message } if message.contains("is written again")),
    );
    let text = std::fs::read_to_string(w.dir.path().join("missing-dir/vigil.prom")).unwrap();
    assert_eq!(parsed(&text)["vigil_agents{lifecycle=working}"], 1.0);
}
