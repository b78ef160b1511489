//! Fitting text vigil prints to a terminal's width: prose wrapped between words, and a
//! table's last column cut at a word with "…". Never breaks inside a word (a word
//! longer than the whole width is cut, marked "…"). Counts chars; pure, no IO.

/// `text` cut to at most `width` chars, at a word boundary, "…" marking the cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let room = width - 1; // for the "…"
    let mut out = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!out.is_empty());
        if out.chars().count() + sep + word.chars().count() > room {
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.trim().is_empty() {
        // The first word alone is too long: cut it.
        out = text.chars().take(room).collect();
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// `text` wrapped to lines of at most `width` chars between words; lines after the
/// first start with `indent` spaces. A word that cannot fit a line is cut.
pub fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let indent = indent.min(width / 2);
    let mut lines = Vec::new();
    let mut line = String::new();
    let (mut start, mut len) = (0, 0);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let words = word.chars().count();
        if len > start && len + 1 + words > width {
            lines.push(std::mem::replace(&mut line, " ".repeat(indent)));
            (start, len) = (indent, indent);
        }
        if len > start {
            line.push(' ');
            len += 1;
        }
        let word = truncate(word, width.saturating_sub(len));
        len += word.chars().count();
        line.push_str(&word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_cuts_between_words_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("idle 4 checks; nudged twice", 15), "idle 4 checks;…");
        assert_eq!(truncate("idle 4 checks; nudged twice", 14), "idle 4…");
        assert_eq!(truncate("idle 4 checks; nudged twice", 12), "idle 4…");
        assert_eq!(truncate("unbreakable", 5), "unbr…");
        assert_eq!(truncate("—— ✓ ✓", 4), "——…");
    }

    #[test]
    fn wrapping_breaks_between_words_and_indents_what_follows() {
        let lines = wrap("owner: none — nothing supervises this project now", 20, 2);
        assert_eq!(lines, ["owner: none —", "  nothing supervises", "  this project now"]);
        for l in &lines {
            assert!(l.chars().count() <= 20);
        }
        let lines = wrap("see /a/very/long/path/that/cannot/fit", 12, 2);
        assert!(lines.iter().all(|l| l.chars().count() <= 12), "{lines:?}");
        assert_eq!(lines[0], "see");
    }
}
