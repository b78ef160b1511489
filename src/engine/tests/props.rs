//! Properties that hold for any sequence of observations, waits and user commands:
//! lifecycle only moves forward, no agent gets two starts in one step, and nothing
//! automatic touches an agent while it cools down except its resume.

use proptest::prelude::*;

use super::*;

const NAMES: [&str; 3] = ["a", "b", "c"];
const SCREENS: [&str; 7] = [
    "working on step 1",
    "working on step 2",
    "done\n$",
    "⠋ Thinking… 12s",
    "Do you trust the files in this folder?",
    "Error: rate limit exceeded\n$",
    "You've hit your limit · resets 4:50pm (Asia/Shanghai)\n$",
];

#[derive(Clone, Debug)]
enum Ev {
    Wait(u64),
    Show(usize, usize),
    Die(usize, i32),
    Vanish(usize),
    ProcessGone(usize),
    Command(usize, u8),
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        6 => (1u64..900).prop_map(Ev::Wait),
        6 => (0..NAMES.len(), 0..SCREENS.len()).prop_map(|(a, s)| Ev::Show(a, s)),
        1 => (0..NAMES.len(), 0i32..3).prop_map(|(a, c)| Ev::Die(a, c)),
        1 => (0..NAMES.len()).prop_map(Ev::Vanish),
        1 => (0..NAMES.len()).prop_map(Ev::ProcessGone),
        1 => (0..NAMES.len(), 0u8..5).prop_map(|(a, c)| Ev::Command(a, c)),
    ]
}

fn command(agent: usize, kind: u8) -> Command {
    let name = Sim::name(NAMES[agent]);
    match kind {
        0 => Command::Stop(name),
        1 => Command::Up(name),
        2 => Command::Restart(name),
        3 => Command::Nudge(name),
        _ => Command::Triage(name),
    }
}

/// Whether an agent is cooling down (rate limit or restart hold) at `now`.
fn cooling(rec: &AgentRecord, now: Time) -> bool {
    rec.rate_limit.as_ref().is_some_and(|rl| now < rl.until) || rec.cooldown_until().is_some_and(|u| now < u)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_keeps_its_promises(events in proptest::collection::vec(event(), 1..200)) {
        let policy = Policy {
            stale_after: Duration::from_secs(1800),
            ..Policy::default()
        };
        let mut sim = Sim::running(&NAMES, policy);
        let mut last: std::collections::HashMap<String, (Incarnation, Lifecycle)> = Default::default();
        for ev in events {
            let mut commands = Vec::new();
            match ev {
                Ev::Wait(secs) => sim.wait(Duration::from_secs(secs)),
                Ev::Show(a, s) => {
                    if let Some(p) = sim.panes.iter_mut().find(|p| p.agent == NAMES[a]) {
                        p.tail = Some(SCREENS[s].lines().map(str::to_owned).collect());
                    }
                }
                Ev::Die(a, code) => {
                    if let Some(p) = sim.panes.iter_mut().find(|p| p.agent == NAMES[a]) {
                        p.state = PaneState::Dead(Exit::Code(code));
                    }
                }
                Ev::Vanish(a) => sim.panes.retain(|p| p.agent != NAMES[a]),
                Ev::ProcessGone(a) => {
                    if let Some(p) = sim.panes.iter_mut().find(|p| p.agent == NAMES[a]) {
                        p.state = PaneState::ProcessGone;
                    }
                }
                Ev::Command(a, k) => commands.push(command(a, k)),
            }
            let cooling_before: Vec<(String, bool)> = sim
                .mind
                .agents
                .iter()
                .map(|(n, r)| (n.to_string(), cooling(r, sim.now)))
                .collect();
            let step = sim.step_with(&commands);

            let mut started = std::collections::HashSet::new();
            for (agent, _) in starts(&step.actions) {
                prop_assert!(started.insert(agent.clone()), "two starts for {} in one step", agent);
            }
            for action in &step.actions {
                let agent = action.agent().to_string();
                let commanded = commands.iter().any(|c| c.agent().as_str() == agent);
                let was_cooling = cooling_before.iter().any(|(n, c)| *n == agent && *c);
                let allowed = matches!(action, Action::Send { purpose: Purpose::Resume, .. } | Action::Notify { .. });
                prop_assert!(
                    !was_cooling || commanded || allowed,
                    "{:?} targets {} while it cools down", action, agent
                );
            }
            for (name, rec) in &sim.mind.agents {
                let now = (rec.incarnation, rec.lifecycle());
                if let Some(&(inc, lc)) = last.get(name.as_str()) {
                    prop_assert!(now.0 >= inc, "incarnation of {} went down", name);
                    if now.0 == inc && now.1 != lc {
                        prop_assert!(lc.can_become(now.1), "{} {}: {:?} -> {:?}", name, inc, lc, now.1);
                    }
                }
                last.insert(name.to_string(), now);
            }
        }
    }
}
