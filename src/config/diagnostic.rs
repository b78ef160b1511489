//! Config errors a person can act on: `file:line:column`, the key path, what was
//! expected, the offending line with a caret, and a "did you mean" for misspellings.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config file, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The key path, e.g. `agent[1].restart`; `None` for a syntax error.
    pub key: Option<String>,
    pub message: String,
    pub help: Option<String>,
    /// The offending line and the caret under it.
    source_line: String,
    caret: String,
}

impl Diagnostic {
    pub fn new(file: &Path, text: &str, span: Option<Range<usize>>, key: Option<String>, message: String) -> Self {
        let span = span.unwrap_or(0..0);
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..line_end].trim_end_matches('\r').to_owned();
        let width = text[start..end.min(line_end)].chars().count().max(1);
        let caret = format!("{}{}", " ".repeat(column - 1), "^".repeat(width));
        Self {
            file: file.to_owned(),
            line,
            column,
            key,
            message,
            help: None,
            source_line,
            caret,
        }
    }

    pub fn with_help(mut self: Box<Self>, help: Option<String>) -> Box<Self> {
        self.help = help;
        self
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        writeln!(f, "{}", self.message)?;
        let gutter = " ".repeat(self.line.to_string().len());
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(f, "{gutter} | {}", self.caret)?;
        if let Some(help) = &self.help {
            write!(f, "\n{gutter} = help: {help}")?;
        }
        Ok(())
    }
}

/// The closest candidate to a misspelt word, when one is close enough to be meant.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or variant) → (`x`, [a, b]).
pub fn parse_unknown(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    Some((word.to_owned(), expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_in_characters() {
        let text = "[vigil]\n# é\nname = \"x\"\n";
        let at = text.find("\"x\"").unwrap();
        let d = Diagnostic::new(
            Path::new("v.toml"),
            text,
            Some(at..at + 3),
            Some("name".into()),
            "bad".into(),
        );
        assert_eq!((d.line, d.column), (3, 8));
        assert_eq!(
            d.to_string(),
            "v.toml:3:8: `name`: bad\n  |\n3 | name = \"x\"\n  |        ^^^"
        );
    }

    #[test]
    fn suggests_only_close_words() {
        assert_eq!(
            did_you_mean("restrat", ["restart", "preset"]).as_deref(),
            Some("did you mean `restart`?")
        );
        assert_eq!(
            did_you_mean("comand", ["command", "cwd"]).as_deref(),
            Some("did you mean `command`?")
        );
        assert_eq!(did_you_mean("banana", ["restart", "preset"]), None);
    }

    #[test]
    fn reads_serdes_unknown_messages() {
        let (w, e) = parse_unknown("unknown field `restrat`, expected one of `name`, `restart`").unwrap();
        assert_eq!(w, "restrat");
        assert_eq!(e, ["name", "restart"]);
        let (w, e) = parse_unknown("unknown variant `sometimes`, expected `no` or `on-failure`").unwrap();
        assert_eq!((w.as_str(), e.len()), ("sometimes", 2));
    }
}
