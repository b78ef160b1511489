//! Reading a pane's tail: what the agent's screen says (rate limited, a dialog waiting
//! for a human, busy, prompt visible) and a hash of it with volatile text (spinners,
//! timers, token counters) removed, so an animated but hung agent reads as unchanged.
//! Pane text is data: it is only ever matched, never run. No IO here.

use super::limit::{self, AfterReset};
use regex::Regex;

pub mod menu;

/// The compiled patterns of one agent: its preset, with any config overrides applied.
/// Each is one regex (the sources joined as alternatives); `None` means "never matches".
#[derive(Clone, Debug, Default)]
pub struct Patterns {
    pub prompt: Option<Regex>,
    pub busy: Option<Regex>,
    pub waiting: Option<Regex>,
    pub rate_limit: Option<Regex>,
    pub volatile: Option<Regex>,
    /// Whether a dialog no pattern lists is spotted by its shape ([`menu`]).
    pub menus: MenuRule,
}

/// Whether the generic dialog rule ([`menu::spot`]) runs after an agent's own patterns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MenuRule {
    /// A menu, key hint or yes/no question at the foot of the screen is a dialog.
    #[default]
    Spot,
    /// Only the agent's own `waiting` patterns find dialogs.
    Off,
}

/// Which pattern set a regex belongs to; names match the config keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    Prompt,
    Busy,
    Waiting,
    RateLimit,
    Volatile,
}

impl PatternKind {
    pub const ALL: [PatternKind; 5] = [
        PatternKind::Prompt,
        PatternKind::Busy,
        PatternKind::Waiting,
        PatternKind::RateLimit,
        PatternKind::Volatile,
    ];

    pub fn key(self) -> &'static str {
        match self {
            PatternKind::Prompt => "prompt",
            PatternKind::Busy => "busy",
            PatternKind::Waiting => "waiting",
            PatternKind::RateLimit => "rate_limit",
            PatternKind::Volatile => "volatile",
        }
    }
}

impl Patterns {
    /// Joins the sources as alternatives into one regex; each source keeps its own
    /// inline flags because each sits in its own group.
    pub fn join(sources: &[String]) -> Result<Option<Regex>, regex::Error> {
        if sources.is_empty() {
            return Ok(None);
        }
        for source in sources {
            // Compile each alone first so an error points at the culprit.
            Regex::new(source)?;
        }
        let joined = sources.iter().map(|s| format!("(?:{s})")).collect::<Vec<_>>().join("|");
        Regex::new(&joined).map(Some)
    }

    pub fn set(&mut self, kind: PatternKind, regex: Option<Regex>) {
        let slot = match kind {
            PatternKind::Prompt => &mut self.prompt,
            PatternKind::Busy => &mut self.busy,
            PatternKind::Waiting => &mut self.waiting,
            PatternKind::RateLimit => &mut self.rate_limit,
            PatternKind::Volatile => &mut self.volatile,
        };
        *slot = regex;
    }
}

/// How many of the last non-blank lines are searched for the agent's prompt.
pub const PROMPT_LINES: usize = 5;

/// What one look at a pane's tail says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenRead {
    /// md5 (hex) of the tail with volatile text removed.
    pub hash: String,
    /// The line announcing a rate limit, when one is among the last lines.
    pub rate_limit: Option<String>,
    /// The line after it, where a wrapped message often says when the limit lifts.
    pub rate_limit_more: Option<String>,
    /// A line among the last ones saying the limit lifted (or will) and what the agent
    /// does then. Said below the limit's line, it makes that line history.
    pub limit_over: Option<LimitOver>,
    /// A dialog (or a sign-in) that needs a human, when one is on screen.
    pub waiting: Option<Waiting>,
    pub busy: bool,
    pub prompt: bool,
    /// Nothing printed yet.
    pub blank: bool,
}

/// What the agent says about a limit's end, and the line that says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOver {
    pub line: String,
    pub then: AfterReset,
}

/// What needs a human on screen, and which rule saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The line that says so, trimmed.
    pub line: String,
    pub rule: WaitingRule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitingRule {
    /// One of the agent's `waiting` patterns (its preset's or the config's).
    Pattern,
    /// The shape of a dialog no pattern lists ([`menu::spot`]).
    Menu,
    /// The agent itself said so (a hook or notify signal, [`super::signal`]).
    Signal,
}

impl WaitingRule {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingRule::Pattern => "pattern",
            WaitingRule::Menu => "menu",
            WaitingRule::Signal => "signal",
        }
    }
}

/// What one screen alone says, strongest first (a live agent's activity also weighs
/// whether the screen changed since the last look).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    RateLimited,
    Waiting,
    Busy,
    Idle,
    Quiet,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::RateLimited => "rate_limited",
            Verdict::Waiting => "waiting",
            Verdict::Busy => "busy",
            Verdict::Idle => "idle",
            Verdict::Quiet => "quiet",
        }
    }
}

impl ScreenRead {
    pub fn verdict(&self) -> Verdict {
        if self.rate_limit.is_some() {
            Verdict::RateLimited
        } else if self.waiting.is_some() {
            Verdict::Waiting
        } else if self.busy {
            Verdict::Busy
        } else if self.prompt {
            Verdict::Idle
        } else {
            Verdict::Quiet
        }
    }
}

/// The tail as vigil judges it: trailing whitespace trimmed, tmux's own "Pane is dead"
/// line and trailing blank lines dropped, at most `lines` lines.
pub fn tail(raw: &[String], lines: usize) -> Vec<&str> {
    let mut kept: Vec<&str> = raw.iter().map(|l| l.trim_end()).collect();
    while kept.last().is_some_and(|l| l.is_empty()) {
        kept.pop();
    }
    if kept.last().is_some_and(|l| is_tmux_dead_notice(l)) {
        kept.pop();
        while kept.last().is_some_and(|l| l.is_empty()) {
            kept.pop();
        }
    }
    let skip = kept.len().saturating_sub(lines);
    kept.split_off(skip)
}

/// tmux's own words under a dead pane with `remain-on-exit`, not the agent's.
fn is_tmux_dead_notice(line: &str) -> bool {
    line.starts_with("Pane is dead (") && line.ends_with(')')
}

/// The last `n` non-blank lines of a tail, oldest first.
pub fn last_non_blank<'a>(tail: &[&'a str], n: usize) -> Vec<&'a str> {
    let mut out: Vec<&str> = tail
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .copied()
        .collect();
    out.reverse();
    out
}

fn first_match<'a>(regex: Option<&Regex>, lines: &[&'a str]) -> Option<&'a str> {
    let regex = regex?;
    lines.iter().find(|l| regex.is_match(l)).copied()
}

/// A pane's last lines as captured. Clones share the lines and what was last read of
/// them: a still screen that the supervisor hands on pass after pass, uncaptured, is
/// read once, not once a pass.
#[derive(Clone, Debug, Default)]
pub struct Tail(std::sync::Arc<Captured>);

#[derive(Debug, Default)]
struct Captured {
    lines: Vec<String>,
    last: std::sync::Mutex<Option<Memo>>,
}

/// A read of a tail, and what it was read with: these very patterns (held, so no other
/// patterns can come to stand at their address), these bounds.
#[derive(Debug)]
struct Memo {
    patterns: std::sync::Arc<Patterns>,
    tail_lines: usize,
    rate_limit_lines: usize,
    read: ScreenRead,
}

impl Tail {
    pub fn new(lines: Vec<String>) -> Self {
        Self(std::sync::Arc::new(Captured {
            lines,
            last: std::sync::Mutex::default(),
        }))
    }

    /// What [`read`] says of these lines, read again only with other patterns or
    /// bounds than last time (patterns made again, by a reload, are other patterns).
    pub fn read(&self, patterns: &std::sync::Arc<Patterns>, tail_lines: usize, rate_limit_lines: usize) -> ScreenRead {
        let mut last = self.0.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(memo) = last.as_ref().filter(|m| {
            m.tail_lines == tail_lines
                && m.rate_limit_lines == rate_limit_lines
                && std::sync::Arc::ptr_eq(&m.patterns, patterns)
        }) {
            return memo.read.clone();
        }
        let fresh = read(&self.0.lines, patterns, tail_lines, rate_limit_lines);
        *last = Some(Memo {
            patterns: patterns.clone(),
            tail_lines,
            rate_limit_lines,
            read: fresh.clone(),
        });
        fresh
    }
}

impl std::ops::Deref for Tail {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0.lines
    }
}

impl From<Vec<String>> for Tail {
    fn from(lines: Vec<String>) -> Self {
        Self::new(lines)
    }
}

impl FromIterator<String> for Tail {
    fn from_iter<I: IntoIterator<Item = String>>(lines: I) -> Self {
        Self::new(lines.into_iter().collect())
    }
}

impl PartialEq for Tail {
    fn eq(&self, other: &Self) -> bool {
        self.0.lines == other.0.lines
    }
}

/// Reads a pane's tail. `tail_lines` bounds what is hashed and searched;
/// `rate_limit_lines` how many of the last non-blank lines may announce a limit.
pub fn read(raw: &[String], patterns: &Patterns, tail_lines: usize, rate_limit_lines: usize) -> ScreenRead {
    let tail = tail(raw, tail_lines);
    let mut digest = md5::Context::new();
    for line in &tail {
        let stable = match &patterns.volatile {
            Some(v) => v.replace_all(line, ""),
            None => std::borrow::Cow::Borrowed(*line),
        };
        digest.consume(stable.trim_end().as_bytes());
        digest.consume(b"\n");
    }
    let searched = last_non_blank(&tail, rate_limit_lines);
    let limit_at = patterns
        .rate_limit
        .as_ref()
        .and_then(|re| searched.iter().position(|l| re.is_match(l)));
    let over_at = searched.iter().rposition(|l| limit::after_reset(l).is_some());
    let limit_over = over_at.and_then(|i| {
        let line = searched.get(i)?.trim();
        Some(LimitOver {
            line: line.to_owned(),
            then: limit::after_reset(line)?,
        })
    });
    // A limit followed by word that it lifted and the agent waits for Enter is
    // history. One that says it will go on by itself still holds until its reset.
    let lifted_at = over_at.filter(|_| limit_over.as_ref().is_some_and(|o| o.then == AfterReset::AwaitsEnter));
    let limit_at = limit_at.filter(|&l| lifted_at.is_none_or(|o| o <= l));
    let limit_line = |offset: usize| {
        limit_at
            .and_then(|i| searched.get(i + offset))
            .map(|l| l.trim().to_owned())
    };
    let busy = first_match(patterns.busy.as_ref(), &tail).is_some();
    let prompt = first_match(patterns.prompt.as_ref(), &last_non_blank(&tail, PROMPT_LINES)).is_some();
    let listed = first_match(patterns.waiting.as_ref(), &tail).map(|l| Waiting {
        line: l.trim().to_owned(),
        rule: WaitingRule::Pattern,
    });
    // A busy agent or one at its prompt is not showing a dialog its patterns missed.
    let unlisted = || match patterns.menus {
        MenuRule::Spot if !busy && !prompt => menu::spot(&tail, patterns.prompt.as_ref()).map(|line| Waiting {
            line,
            rule: WaitingRule::Menu,
        }),
        _ => None,
    };
    ScreenRead {
        hash: format!("{:x}", digest.finalize()),
        rate_limit: limit_line(0),
        rate_limit_more: limit_line(1),
        limit_over,
        waiting: listed.or_else(unlisted),
        busy,
        prompt,
        blank: tail.iter().all(|l| l.trim().is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_tail_handed_on_is_read_once_for_the_same_patterns_and_again_for_others() {
        let tail = Tail::new(lines("working\n> "));
        let shared = std::sync::Arc::new(patterns());
        let first = tail.read(&shared, 30, 5);
        assert!(first.prompt);
        let handed_on = tail.clone();
        assert_eq!(handed_on.read(&shared, 30, 5), first);
        assert_eq!(first, read(&tail, &patterns(), 30, 5), "the same as reading afresh");
        let no_prompt = std::sync::Arc::new(Patterns {
            prompt: None,
            ..patterns()
        });
        assert!(
            !handed_on.read(&no_prompt, 30, 5).prompt,
            "other patterns read it again"
        );
        let bounded = handed_on.read(&shared, 1, 5);
        assert_eq!(bounded, read(&tail, &patterns(), 1, 5), "other bounds read it again");
        assert_ne!(bounded.hash, first.hash);
    }

    fn patterns() -> Patterns {
        let p = |s: &[&str]| Patterns::join(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        Patterns {
            prompt: p(&[r"^\$ ?$", r"^> ?$"]),
            busy: p(&["esc to interrupt"]),
            waiting: p(&["(?i)do you trust"]),
            rate_limit: p(&["(?i)rate limit", r"\b429\b"]),
            volatile: p(&["[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", r"\(\d+s\)"]),
            menus: MenuRule::Spot,
        }
    }

    #[test]
    fn spinner_frames_hash_the_same_once_volatile_text_is_removed() {
        let a = read(&lines("working on it\n⠋ Thinking (12s)"), &patterns(), 30, 3);
        let b = read(&lines("working on it\n⠹ Thinking (13s)"), &patterns(), 30, 3);
        let c = read(&lines("working on it\n⠹ Writing (13s)"), &patterns(), 30, 3);
        assert_eq!(a.hash, b.hash);
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn trailing_blank_lines_and_the_tmux_dead_notice_are_not_the_agents_words() {
        let raw = lines("boom\n\n\nPane is dead (status 3, Mon Nov 23 00:51:04 2026)\n\n");
        assert_eq!(tail(&raw, 30), vec!["boom"]);
        let with_blanks = read(&lines("x\n\n   \n"), &patterns(), 30, 3);
        assert_eq!(with_blanks.hash, read(&lines("x"), &patterns(), 30, 3).hash);
    }

    #[test]
    fn only_the_last_lines_are_hashed() {
        let mut many: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let a = read(&many, &patterns(), 30, 3);
        many[0] = "changed far above".into();
        assert_eq!(a.hash, read(&many, &patterns(), 30, 3).hash);
    }

    #[test]
    fn classifies_prompt_busy_dialog_and_limit() {
        let idle = read(&lines("done.\n$"), &patterns(), 30, 3);
        assert!(idle.prompt && !idle.busy && idle.waiting.is_none() && idle.rate_limit.is_none());

        let busy = read(&lines("> \n⠋ Thinking (esc to interrupt)"), &patterns(), 30, 3);
        assert!(busy.busy);

        let dialog = read(
            &lines("Do you trust the files in this folder?\n1. Yes\n2. No"),
            &patterns(),
            30,
            3,
        );
        assert_eq!(
            dialog.waiting.map(|w| w.line).as_deref(),
            Some("Do you trust the files in this folder?")
        );

        let limited = read(&lines("Error: 429 Too Many Requests\n$"), &patterns(), 30, 3);
        assert_eq!(limited.rate_limit.as_deref(), Some("Error: 429 Too Many Requests"));
    }

    #[test]
    fn a_rate_limit_far_above_the_last_lines_is_history() {
        let screen = lines("rate limit hit\nretrying\nok\nworking\nstill working");
        assert!(read(&screen, &patterns(), 30, 3).rate_limit.is_none());
        assert!(read(&screen, &patterns(), 30, 5).rate_limit.is_some());
    }

    #[test]
    fn a_menu_no_pattern_lists_is_waiting_unless_the_prompt_or_busy_marker_shows() {
        let menu = "Deploy what?\n› 1. Everything\n  2. Only the changes";
        let read_it = |text: &str, p: &Patterns| read(&lines(text), p, 30, 3);
        let w = read_it(menu, &patterns()).waiting.expect("a menu");
        assert_eq!((w.rule, w.line.as_str()), (WaitingRule::Menu, "› 1. Everything"));
        assert_eq!(read_it(menu, &patterns()).verdict(), Verdict::Waiting);
        assert_eq!(read_it(&format!("{menu}\n$"), &patterns()).verdict(), Verdict::Idle);
        let busy = format!("{menu}\n⠋ working (esc to interrupt)");
        assert_eq!(read_it(&busy, &patterns()).verdict(), Verdict::Busy);
        let off = Patterns {
            menus: MenuRule::Off,
            ..patterns()
        };
        assert_eq!(read_it(menu, &off).verdict(), Verdict::Quiet);
        // A listed dialog is the pattern's, whatever its shape.
        let listed = read_it("Do you trust this?\n› 1. Yes\n  2. No", &patterns());
        assert_eq!(listed.waiting.map(|w| w.rule), Some(WaitingRule::Pattern));
    }

    #[test]
    fn a_blank_screen_is_blank() {
        assert!(read(&[], &patterns(), 30, 3).blank);
        assert!(read(&lines("\n  \n"), &patterns(), 30, 3).blank);
    }
}
