//! Every pane at one look. A full listing asks tmux for each pane's tags, state and
//! server (fifteen fields a pane); a glance asks only what moves on a pane that stays
//! (the second it last printed, its size) and what tells it is still that pane of that
//! server (the server's pid, the pane's id and session name). When a glance finds
//! exactly the panes of the last full listing, each alive then, its figures are put on
//! that listing: a fleet whose panes stay costs the server a short format a pass. Any
//! other answer (a pane born or gone, another server, a session renamed, a line that
//! does not read) is followed by a full listing, and so is a glance at a listing 30 s
//! old.
//!
//! A glance does not see a pane's process end: that is left to its caller, which looks
//! at every glanced pane's process anyway (by its pidfd or in /proc) and asks for a
//! full listing ([`Look::Full`]) when one has gone. A process that ended is what a dead
//! pane and a pane respawned both show.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Host, Listing, Pane, ServerId, TmuxError};

/// Fields asked of `list-panes`, tab-separated; the session name last, so a tab in a
/// foreign session's name cannot shift the other fields. `#{pid}` and `#{start_time}`
/// are the server's, so a server replaced between two looks is noticed.
/// `#{window_activity}` and the size tell a screen that cannot have changed since it
/// was last captured. `#{@vigil-control}` marks the hidden session of vigil's
/// control-mode clients, which is nobody's pane.
pub(super) const LIST_FORMAT: &str = "#{pane_id}\t#{pane_pid}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{@vigil-agent}\t#{@vigil-incarnation}\t#{@vigil-run}\t#{@vigil-exit}\t#{pid}\t#{start_time}\t#{window_activity}\t#{pane_width}x#{pane_height}\t#{@vigil-control}\t#{session_name}";

/// Fields asked of a glance, the session name last for the same reason: four, since
/// every field costs the server a lookup for each pane. A pane id is never given twice
/// by one server. The server's pid, which tells a server replaced between two looks
/// (even one that gave the same ids to panes of the same names), is asked once, before
/// the panes and in the same go ([`Ask::Glance`]): asked of each pane, it cost the
/// server as much as two other fields.
pub(super) const GLANCE_FORMAT: &str = "#{pane_id}\t#{window_activity}\t#{pane_width}x#{pane_height}\t#{session_name}";

/// What a survey asks tmux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// `list-panes -a -F` [`LIST_FORMAT`].
    Full,
    /// The server's pid (`display-message -p '#{pid}'`), then `list-panes -a -F`
    /// [`GLANCE_FORMAT`], in one go to one server: the pid on the first line.
    Glance,
}

/// What a survey may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// A glance where the last full listing allows one: for a caller that checks
    /// every pane's process itself.
    Glance,
    /// A full listing, always.
    Full,
}

/// How long a full listing is glanced at before it is asked again.
const FULL_EVERY: Duration = Duration::from_secs(30);

/// One pane of a full listing, as a glance finds it again.
#[derive(Clone, Debug)]
struct Known {
    id: u32,
    pane: Pane,
    /// The hidden pane of the control clients.
    control: bool,
}

/// The last full listing: when, of which server, and every pane in tmux's order.
#[derive(Debug)]
struct Last {
    at: Instant,
    server: ServerId,
    panes: Vec<Known>,
}

/// The last full listing of a client, kept for glances (clones of a client share it).
#[derive(Debug, Default)]
pub struct LastListing(Mutex<Option<Last>>);

/// Every pane at one look (the hidden control pane left out), and whether a server
/// answered: tmux's own words for "nothing listens on this socket" are the server gone,
/// never an empty fleet. A glance when `look` allows one and the client keeps its
/// `last` listing. `list` asks tmux what [`Ask`] says: its output, `None` when no
/// server runs.
pub(super) fn survey(
    last: Option<&LastListing>,
    look: Look,
    list: impl Fn(Ask) -> Result<Option<String>, TmuxError>,
) -> Result<Listing, TmuxError> {
    let Some(last) = last else {
        return full(&list).map(|(listing, _)| listing);
    };
    let mut last = last.0.lock().unwrap_or_else(|p| p.into_inner());
    let glance = last
        .as_mut()
        .filter(|l| look == Look::Glance && l.at.elapsed() < FULL_EVERY);
    if let Some(kept) = glance {
        match list(Ask::Glance) {
            Ok(Some(out)) => {
                if let Some(listing) = kept.glanced(&out) {
                    return Ok(listing);
                }
            }
            Ok(None) => {
                *last = None;
                return Ok(gone());
            }
            Err(err) => {
                *last = None;
                return Err(err);
            }
        }
    }
    let (listing, kept) = full(&list).inspect_err(|_| *last = None)?;
    *last = kept;
    Ok(listing)
}

fn gone() -> Listing {
    Listing {
        host: Host::ServerGone,
        panes: Vec::new(),
    }
}

/// A full listing, and what a glance may stand on: nothing when a line did not read
/// or no server was named.
fn full(list: &impl Fn(Ask) -> Result<Option<String>, TmuxError>) -> Result<(Listing, Option<Last>), TmuxError> {
    let Some(out) = list(Ask::Full)? else {
        return Ok((gone(), None));
    };
    let mut server = None;
    let mut panes = Vec::new();
    let mut unread = false;
    for line in out.lines() {
        match parse_pane(line) {
            Some((known, id)) => {
                server = server.or(id);
                panes.push(known);
            }
            None => unread = true,
        }
    }
    let listing = listing_of(&panes, server);
    let at = Instant::now();
    let last = server.filter(|_| !unread).map(|server| Last { at, server, panes });
    Ok((listing, last))
}

/// The listing of `panes`: the control pane left out, one pane per session (the first
/// listed is vigil's).
fn listing_of(panes: &[Known], server: Option<ServerId>) -> Listing {
    let mut sessions = HashSet::new();
    let panes = panes
        .iter()
        .filter(|k| !k.control && sessions.insert(k.pane.session.as_str()))
        .map(|k| k.pane.clone())
        .collect();
    Listing {
        host: Host::Up { server },
        panes,
    }
}

impl Last {
    /// The listing a glance's answer shows, if it lists exactly these panes, each
    /// alive then: with the glance's activity and sizes.
    fn glanced(&mut self, out: &str) -> Option<Listing> {
        let mut lines = out.lines();
        let server_pid: u32 = lines.next()?.parse().ok()?;
        if server_pid != self.server.pid {
            return None;
        }
        for known in &mut self.panes {
            let seen = parse_glance(lines.next()?)?;
            let same = seen.id == known.id && seen.session == known.pane.session && !known.pane.dead;
            if !same {
                return None;
            }
            known.pane.activity = seen.activity;
            known.pane.size = seen.size;
        }
        if lines.next().is_some() {
            return None;
        }
        Some(listing_of(&self.panes, Some(self.server)))
    }
}

/// `%12` → 12.
fn pane_id(field: &str) -> Option<u32> {
    field.strip_prefix('%')?.parse().ok()
}

fn size(field: &str) -> Option<(u16, u16)> {
    let (w, h) = field.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// One full `list-panes` line: the pane, the server that listed it.
fn parse_pane(line: &str) -> Option<(Known, Option<ServerId>)> {
    let mut f = line.splitn(15, '\t');
    let id = pane_id(f.next()?)?;
    let pane_pid = f.next()?.parse().ok()?;
    let dead = f.next()? == "1";
    let dead_status = f.next()?.parse().ok();
    let dead_signal = f.next()?.parse().ok();
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let agent = text(f.next()?);
    let incarnation = f.next()?.parse().ok();
    let run = text(f.next()?);
    let exit_tag = f.next()?.parse().ok();
    let pid = f.next()?.parse().ok();
    let started = f.next()?.parse().ok();
    let server = pid.zip(started).map(|(pid, started)| ServerId { pid, started });
    let activity = f.next()?.parse().ok();
    let size = size(f.next()?);
    let control = !f.next()?.is_empty();
    let session = f.next()?.to_owned();
    let pane = Pane {
        session,
        pane_pid,
        dead,
        dead_status,
        dead_signal,
        agent,
        incarnation,
        run,
        exit_tag,
        activity,
        size,
    };
    Some((Known { id, pane, control }, server))
}

/// One glance line.
struct Glance<'a> {
    id: u32,
    activity: Option<i64>,
    size: Option<(u16, u16)>,
    session: &'a str,
}

fn parse_glance(line: &str) -> Option<Glance<'_>> {
    let mut f = line.splitn(4, '\t');
    Some(Glance {
        id: pane_id(f.next()?)?,
        activity: f.next()?.parse().ok(),
        size: size(f.next()?),
        session: f.next()?,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn parses_list_panes_lines() {
        let line = "%7\t4242\t1\t3\t\tbackend\t2\tproj-1234abcd\t3\t77\t1800000000\t1800000042\t120x40\t\tproj-backend";
        let (known, server) = parse_pane(line).unwrap();
        let pane = &known.pane;
        assert_eq!(known.id, 7);
        assert!(!known.control);
        assert_eq!(
            server,
            Some(ServerId {
                pid: 77,
                started: 1_800_000_000
            })
        );
        assert_eq!(pane.pane_pid, 4242);
        assert!(pane.dead);
        assert_eq!(pane.dead_status, Some(3));
        assert_eq!(pane.dead_signal, None);
        assert_eq!(pane.agent.as_deref(), Some("backend"));
        assert_eq!(pane.incarnation, Some(2));
        assert_eq!(pane.exit_tag, Some(3));
        assert!(pane.is_ours("proj-1234abcd"));
        assert_eq!(pane.activity, Some(1_800_000_042));
        assert_eq!(pane.size, Some((120, 40)));

        let (foreign, _) = parse_pane("%1\t77\t0\t\t\t\t\t\t\t77\t1800000000\t\t\t\tmy\tweird session").unwrap();
        assert_eq!((foreign.pane.activity, foreign.pane.size), (None, None));
        assert_eq!(foreign.pane.session, "my\tweird session");
        assert!(!foreign.pane.is_ours("proj-1234abcd"));
        assert!(parse_pane("garbage").is_none());

        let (control, _) = parse_pane("%0\t9\t0\t\t\t\t\t\t\t77\t1800000000\t1\t80x24\t1\t_vigil-control").unwrap();
        assert!(control.control, "the control clients' pane is told apart");
    }

    /// A tmux that answers from a script, and keeps a last listing.
    struct Scripted {
        answers: RefCell<Vec<Result<Option<String>, TmuxError>>>,
        asked: RefCell<Vec<String>>,
        last: LastListing,
    }

    impl Scripted {
        fn new() -> Self {
            Self {
                answers: RefCell::new(Vec::new()),
                asked: RefCell::new(Vec::new()),
                last: LastListing::default(),
            }
        }

        fn answer(&self, out: &str) {
            self.answers.borrow_mut().push(Ok(Some(out.to_owned())));
        }

        /// Which formats were asked, `full` or `glance`, since the last call.
        fn asked(&self) -> Vec<String> {
            self.asked.take()
        }
    }

    fn survey(tmux: &Scripted) -> Result<Listing, TmuxError> {
        survey_as(tmux, Look::Glance)
    }

    fn survey_as(tmux: &Scripted, look: Look) -> Result<Listing, TmuxError> {
        super::survey(Some(&tmux.last), look, |ask| {
            let what = if ask == Ask::Glance { "glance" } else { "full" };
            tmux.asked.borrow_mut().push(what.into());
            tmux.answers.borrow_mut().remove(0)
        })
    }

    const SERVER: &str = "77\t1800000000";

    fn full_line(id: u32, pid: u32, dead: bool, activity: i64, session: &str) -> String {
        let dead = if dead { "1" } else { "0" };
        format!("%{id}\t{pid}\t{dead}\t\t\ta\t1\trun\t\t{SERVER}\t{activity}\t200x50\t\t{session}")
    }

    fn glance_line(id: u32, activity: i64, size: &str, session: &str) -> String {
        format!("%{id}\t{activity}\t{size}\t{session}")
    }

    /// A glance's answer: the server's pid, then its lines.
    fn glance(lines: &[String]) -> String {
        format!("77\n{}", lines.join("\n"))
    }

    #[test]
    fn a_glance_that_finds_the_same_panes_carries_their_new_activity_and_size_onto_the_last_listing() {
        let tmux = Scripted::new();
        tmux.answer(&[full_line(1, 100, false, 10, "s-a"), full_line(2, 200, false, 10, "s-b")].join("\n"));
        let first = survey(&tmux).unwrap();
        assert_eq!(tmux.asked(), ["full"]);

        tmux.answer(&glance(&[
            glance_line(1, 12, "200x50", "s-a"),
            glance_line(2, 10, "80x24", "s-b"),
        ]));
        let glanced = survey(&tmux).unwrap();
        assert_eq!(tmux.asked(), ["glance"]);
        assert_eq!(glanced.host, first.host);
        assert_eq!(glanced.panes[0].activity, Some(12));
        assert_eq!(glanced.panes[1].size, Some((80, 24)));
        let mut expected = first.panes.clone();
        expected[0].activity = Some(12);
        expected[1].size = Some((80, 24));
        assert_eq!(glanced.panes, expected, "tags and the rest as the full listing said");
    }

    #[test]
    fn a_glance_that_finds_anything_else_is_followed_by_a_full_listing() {
        let two = [full_line(1, 100, false, 10, "s-a"), full_line(2, 200, false, 10, "s-b")].join("\n");
        let same = |a: &str| glance(&[glance_line(1, 10, "200x50", "s-a"), glance_line(2, 10, "200x50", a)]);
        let cases = [
            (
                "a pane born",
                format!("{}\n{}", same("s-b"), glance_line(3, 10, "200x50", "s-c")),
            ),
            ("a pane gone", glance(&[glance_line(1, 10, "200x50", "s-a")])),
            ("a session renamed", same("s-renamed")),
            ("another pane in its place", same("s-b").replace("%2\t", "%3\t")),
            ("another server", same("s-b").replace("77\n", "78\n")),
            ("no server pid", same("s-b").replace("77\n", "")),
            ("garbage", "garbage".to_owned()),
        ];
        for (what, glance) in cases {
            let tmux = Scripted::new();
            tmux.answer(&two);
            survey(&tmux).unwrap();
            tmux.asked();
            tmux.answer(&glance);
            tmux.answer(&two);
            let listing = survey(&tmux).unwrap();
            assert_eq!(tmux.asked(), ["glance", "full"], "{what}");
            assert_eq!(listing.panes.len(), 2, "{what}");
        }
    }

    #[test]
    fn a_listing_with_a_dead_pane_is_glanced_at_in_vain_and_one_with_a_line_it_cannot_read_not_at_all() {
        let dead = [full_line(1, 100, true, 10, "s-a"), full_line(2, 200, false, 10, "s-b")].join("\n");
        let tmux = Scripted::new();
        tmux.answer(&dead);
        survey(&tmux).unwrap();
        tmux.answer(&glance(&[
            glance_line(1, 10, "200x50", "s-a"),
            glance_line(2, 10, "200x50", "s-b"),
        ]));
        tmux.answer(&dead);
        survey(&tmux).unwrap();
        assert_eq!(tmux.asked(), ["full", "glance", "full"]);

        let unread = [full_line(1, 100, false, 10, "s-a"), "garbage".to_owned()].join("\n");
        let tmux = Scripted::new();
        tmux.answer(&unread);
        tmux.answer(&unread);
        survey(&tmux).unwrap();
        survey(&tmux).unwrap();
        assert_eq!(tmux.asked(), ["full", "full"]);
    }

    #[test]
    fn a_full_look_never_glances_and_is_kept_for_the_next_glance() {
        let two = [full_line(1, 100, false, 10, "s-a"), full_line(2, 200, false, 10, "s-b")].join("\n");
        let tmux = Scripted::new();
        tmux.answer(&two);
        tmux.answer(&two);
        survey(&tmux).unwrap();
        survey_as(&tmux, Look::Full).unwrap();
        tmux.answer(&glance(&[
            glance_line(1, 11, "200x50", "s-a"),
            glance_line(2, 10, "200x50", "s-b"),
        ]));
        let glanced = survey(&tmux).unwrap();
        assert_eq!(tmux.asked(), ["full", "full", "glance"]);
        assert_eq!(glanced.panes[0].activity, Some(11));
    }

    #[test]
    fn no_server_answering_a_glance_is_the_server_gone_and_forgets_the_listing() {
        let tmux = Scripted::new();
        tmux.answer(&full_line(1, 100, false, 10, "s-a"));
        survey(&tmux).unwrap();
        tmux.answers.borrow_mut().push(Ok(None));
        assert_eq!(survey(&tmux).unwrap(), gone());
        tmux.answer(&full_line(1, 100, false, 10, "s-a"));
        survey(&tmux).unwrap();
        assert_eq!(tmux.asked(), ["full", "glance", "full"]);
    }
}
