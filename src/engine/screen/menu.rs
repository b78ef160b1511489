//! Dialogs no preset lists: a screen whose foot asks a human to choose (a numbered menu
//! with a selection marker on one option beside its siblings, an "enter to confirm ·
//! esc to cancel" hint, a yes/no question on the last line) reads as waiting, so a
//! dialog from a newer release is not taken for a hung agent. Applied only after the
//! preset's own patterns found nothing. Pane text is only matched here; no IO.

use std::sync::LazyLock;

use regex::Regex;

/// How many of the last non-blank lines (box borders stripped) may hold the menu.
pub const MENU_LINES: usize = 10;
/// How many of the last non-blank lines may hold a key hint.
pub const HINT_LINES: usize = 4;
/// How far (in non-blank lines) a sibling option may sit from the selected one: an
/// option may carry a line of description.
const SIBLING_REACH: usize = 3;

/// An option line: an optional selection marker, then "1." or "1)" and its text.
static OPTION: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^(?P<marker>[›❯●>▶➤→]\s*)?(?P<n>\d{1,2})[.)]\s+\S"));
/// "Enter to confirm · Esc to cancel", "enter confirm · esc skip", "(Press Enter to
/// submit, Esc to cancel)", in either order.
static HINT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)\b(enter|return|⏎)\s+(to\s+)?(confirm|select|submit|choose)\b.*\besc(ape)?\s+(to\s+)?(cancel|skip|back|go back|exit|close)\b|\besc(ape)?\s+(to\s+)?(cancel|skip|back|go back|exit|close)\b.*\b(enter|return|⏎)\s+(to\s+)?(confirm|select|submit|choose)\b",
    )
});
/// A question waiting for y/n: "Continue? [Y/n]", "Overwrite (yes/no):".
static YES_NO: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(?i)(\((y/n|yes/no)\)|\[(y/n|yes/no)\])\s*[:?]?$"));

/// Compiles a regex written in this file (`None` never matches; a typo fails this
/// module's tests, never a user's run).
fn re(source: &str) -> Option<Regex> {
    Regex::new(source).ok()
}

/// A line without the box drawn around it ("│ ● 1. Trust folder │" → "● 1. Trust folder").
fn unboxed(line: &str) -> &str {
    const BORDER: &[char] = &['│', '┃', '║', '╎', '╏', '┆', '┊'];
    line.trim().trim_matches(BORDER).trim()
}

/// One line of a menu: its number and whether the selection marker is on it.
struct Choice {
    n: u32,
    selected: bool,
}

fn choice(line: &str) -> Option<Choice> {
    let caps = OPTION.as_ref()?.captures(line)?;
    Some(Choice {
        n: caps.name("n")?.as_str().parse().ok()?,
        selected: caps.name("marker").is_some(),
    })
}

/// The line of a dialog nobody listed at the foot of `tail`, when there is one.
/// `prompt` is the agent's own prompt pattern: a line it matches is the input box, not
/// a menu's selection.
pub fn spot(tail: &[&str], prompt: Option<&Regex>) -> Option<String> {
    let lines: Vec<&str> = tail.iter().map(|l| unboxed(l)).filter(|l| !l.is_empty()).collect();
    let foot = |n: usize| &lines[lines.len().saturating_sub(n)..];
    if let Some(last) = lines.last()
        && YES_NO.as_ref().is_some_and(|re| re.is_match(last))
    {
        return Some((*last).to_owned());
    }
    let hint = HINT.as_ref()?;
    if let Some(line) = foot(HINT_LINES).iter().find(|l| hint.is_match(l)) {
        return Some((*line).to_owned());
    }
    selected_option(foot(MENU_LINES), prompt)
}

/// The one selected option of a numbered menu with a sibling next to it.
fn selected_option(lines: &[&str], prompt: Option<&Regex>) -> Option<String> {
    let choices: Vec<(usize, Choice)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| choice(l).map(|c| (i, c)))
        .collect();
    let mut selected = choices.iter().filter(|(_, c)| c.selected);
    let (at, picked) = selected.next()?;
    if selected.next().is_some() {
        // Two markers: a quoted list ("> 1. …" "> 2. …"), not a cursor.
        return None;
    }
    let line = lines[*at];
    if prompt.is_some_and(|p| p.is_match(line)) {
        return None;
    }
    let sibling = choices
        .iter()
        .any(|(i, c)| !c.selected && i.abs_diff(*at) <= SIBLING_REACH && (c.n + 1 == picked.n || picked.n + 1 == c.n));
    sibling.then(|| line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spotted(text: &str) -> Option<String> {
        let lines: Vec<&str> = text.lines().collect();
        spot(&lines, None)
    }

    #[test]
    fn the_patterns_compile() {
        assert!(OPTION.is_some() && HINT.is_some() && YES_NO.is_some());
    }

    #[test]
    fn a_selected_option_beside_its_sibling_is_a_menu() {
        let menu = "Pick a plan\n\n› 1. Keep going\n  2. Stop here\n\n";
        assert_eq!(spotted(menu).as_deref(), Some("› 1. Keep going"));
        let boxed = "╭──╮\n│ Choose │\n│   1. Alpha │\n│ ● 2. Beta │\n╰──╯";
        assert_eq!(spotted(boxed).as_deref(), Some("● 2. Beta"));
        let described = "❯ 1. Yes\n     runs it now\n\n  2. No\n     does nothing";
        assert!(spotted(described).is_some());
    }

    #[test]
    fn a_key_hint_or_a_trailing_yes_no_question_is_a_dialog() {
        assert!(spotted("Overwrite?\n  Yes\n  No\nenter confirm · esc skip").is_some());
        assert!(spotted("Really?\n(Press Enter to submit, Esc to cancel)").is_some());
        assert!(spotted("Esc to cancel · Enter to confirm").is_some());
        assert_eq!(
            spotted("Delete 3 files? [y/N]").as_deref(),
            Some("Delete 3 files? [y/N]")
        );
        assert!(spotted("Proceed (yes/no):").is_some());
    }

    #[test]
    fn ordinary_output_is_not_a_menu() {
        // A numbered plan, a markdown checklist, a quoted list, a list far above the foot.
        assert_eq!(spotted("Plan:\n1. Parse\n2. Check\n3. Write\n$"), None);
        assert_eq!(spotted("- [ ] tests\n- [x] docs\n>"), None);
        assert_eq!(spotted("> 1. quoted\n> 2. list\n"), None);
        assert_eq!(spotted("› 1. alone, no sibling\nsome output"), None);
        let far = format!("● 1. Picked\n  2. Other\n{}", "output\n".repeat(12));
        assert_eq!(spotted(&far), None);
        // Answered long ago, or a hint mid-screen.
        assert_eq!(spotted("Continue? [Y/n] y\ncontinuing"), None);
        let hint_above = format!("enter to confirm · esc to cancel\n{}", "line\n".repeat(6));
        assert_eq!(spotted(&hint_above), None);
    }

    #[test]
    fn the_agents_own_input_line_is_not_a_selection() {
        let prompt = Regex::new(r"^❯(\s|$)").unwrap();
        let lines = ["  2. the second step", "❯ 1. do the first step"];
        assert_eq!(spot(&lines, Some(&prompt)), None);
        assert!(spot(&lines, None).is_some());
    }
}
