//! The notifier: delivers the notices in `outbox/` off the supervision loop, on its own
//! thread, so a hung command or a dead webhook never holds a pass up. Each channel of
//! each notice is tried until it delivers, with backoff, or gives up; the file goes
//! when every channel is done with it. Past `max_per_minute` a storm goes as one
//! digest. Every result comes back to the owner (which alone writes the journal)
//! through [`Notifier::collect`].

pub mod channel;
mod tell;

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel as mpsc_channel};
use std::time::{Duration, Instant};

pub use channel::{Channel, Channels, Sent};
pub use tell::{channels, post_from_outside};

use crate::engine::Time;
use crate::store::outbox::{Delivery, DeliveryOutcome, NOTICE_VERSION, Notice, NoticeKind, Outbox, Pending, new_id};

/// Failed attempts after which a channel gives a notice up (about half an hour).
const MAX_ATTEMPTS: u32 = 12;
const FIRST_RETRY: Duration = Duration::from_secs(2);
const LONGEST_RETRY: Duration = Duration::from_secs(300);
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How long the worker sleeps with nothing due (it also wakes on every post).
const IDLE: Duration = Duration::from_secs(10);

/// The wait before attempt `n + 1` after `n` failures.
fn backoff(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(LONGEST_RETRY)
}

/// What the worker tells the owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    Delivery(Delivery),
    /// Something about the outbox itself (a file that is no notice).
    Warning(String),
}

enum Wake {
    Posted,
    /// A notice that cannot be written down (the state dir is failing): delivered from
    /// memory, lost if vigil stops first.
    Volatile(Box<Pending>),
    Configure(Box<Channels>),
    /// Deliver what is due now, then answer.
    Flush(Sender<()>),
}

/// The owner's handle on the delivery thread.
pub struct Notifier {
    outbox: Outbox,
    channels: Channels,
    wake: Sender<Wake>,
    reports: Receiver<Report>,
}

impl Notifier {
    /// Starts the delivery thread; it delivers what a previous owner left in the
    /// outbox at once.
    pub fn start(outbox: Outbox, channels: Channels) -> Self {
        let (wake, woken) = mpsc_channel();
        let (report, reports) = mpsc_channel();
        let worker = Worker {
            outbox: outbox.clone(),
            channels: channels.clone(),
            report,
            retry: BTreeMap::new(),
            volatile: Vec::new(),
            sent: VecDeque::new(),
            last_digest: None,
            skipped: Default::default(),
        };
        std::thread::spawn(move || worker.run(woken));
        Self {
            outbox,
            channels,
            wake,
            reports,
        }
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Writes a notice to the outbox for every configured channel (synced), and wakes
    /// the thread. Does nothing when no channel is configured.
    pub fn post(&self, notice: Notice) -> Result<(), crate::store::StoreError> {
        let channels = self.channel_names();
        if channels.is_empty() {
            return Ok(());
        }
        self.outbox.post(&Pending::new(notice, channels))?;
        let _ = self.wake.send(Wake::Posted);
        Ok(())
    }

    /// Hands a notice to the thread without writing it (for when the state dir cannot
    /// be written).
    pub fn post_volatile(&self, notice: Notice) {
        let channels = self.channel_names();
        if !channels.is_empty() {
            let _ = self.wake.send(Wake::Volatile(Box::new(Pending::new(notice, channels))));
        }
    }

    /// The configured channels, by the names a pending notice carries.
    fn channel_names(&self) -> Vec<String> {
        self.channels
            .configured()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect()
    }

    /// New settings (a reloaded config).
    pub fn configure(&mut self, channels: Channels) {
        self.channels = channels.clone();
        let _ = self.wake.send(Wake::Configure(Box::new(channels)));
    }

    /// The results that have come back since the last call.
    pub fn collect(&self) -> Vec<Report> {
        self.reports.try_iter().collect()
    }

    /// Waits (up to `limit`) until the thread has tried everything due now; for
    /// one-shot runs (`vigil tick`) that exit after their pass.
    pub fn flush(&self, limit: Duration) -> Vec<Report> {
        let (tx, rx) = mpsc_channel();
        if self.wake.send(Wake::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(limit);
        }
        self.collect()
    }
}

/// A notice of `kind` for the fleet or one agent, stamped now.
pub fn notice(project: &str, kind: NoticeKind, now: Time, reason: String) -> Notice {
    Notice {
        version: NOTICE_VERSION,
        id: new_id(now),
        time: now,
        project: project.to_owned(),
        event: kind,
        resolves: None,
        agent: None,
        incarnation: None,
        reason,
        last_lines: Vec::new(),
        attach: None,
        digest: Vec::new(),
    }
}

/// Notices with their place in a round's list (those past `stored` are volatile).
type Numbered = Vec<(usize, Pending)>;

struct Worker {
    outbox: Outbox,
    channels: Channels,
    report: Sender<Report>,
    /// Per notice id: when it may be tried again.
    retry: BTreeMap<String, Instant>,
    volatile: Vec<Pending>,
    /// When notices were delivered within the rate window.
    sent: VecDeque<Instant>,
    last_digest: Option<Instant>,
    /// Channels already said to be skipped here (said once).
    skipped: std::collections::BTreeSet<Channel>,
}

impl Worker {
    fn run(mut self, woken: Receiver<Wake>) {
        let mut wait = Duration::ZERO;
        loop {
            let mut flushed = None;
            match woken.recv_timeout(wait) {
                Ok(Wake::Posted) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Wake::Volatile(p)) => self.volatile.push(*p),
                Ok(Wake::Configure(c)) => self.channels = *c,
                Ok(Wake::Flush(tx)) => flushed = Some(tx),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Take whatever else is waiting, so a burst of posts is one round.
            while let Ok(more) = woken.try_recv() {
                match more {
                    Wake::Posted => {}
                    Wake::Volatile(p) => self.volatile.push(*p),
                    Wake::Configure(c) => self.channels = *c,
                    Wake::Flush(tx) => flushed = Some(tx),
                }
            }
            wait = self.round();
            if let Some(tx) = flushed {
                let _ = tx.send(());
            }
        }
    }

    fn say(&self, report: Report) {
        let _ = self.report.send(report);
    }

    /// Tries every notice that is due; returns how long until the next one is.
    fn round(&mut self) -> Duration {
        let now = Instant::now();
        let (mut pending, problems) = self.outbox.list();
        for p in problems {
            self.say(Report::Warning(p));
        }
        let stored = pending.len();
        pending.append(&mut self.volatile);
        let ids: std::collections::BTreeSet<&str> = pending.iter().map(|p| p.notice.id.as_str()).collect();
        self.retry.retain(|id, _| ids.contains(id.as_str()));
        let (due, later): (Numbered, Numbered) = pending
            .into_iter()
            .enumerate()
            .partition(|(_, p)| self.retry.get(&p.notice.id).is_none_or(|at| *at <= now));
        // Volatile notices not due yet wait in memory.
        self.volatile
            .extend(later.into_iter().filter(|(i, _)| *i >= stored).map(|(_, p)| p));
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW) {
            self.sent.pop_front();
        }
        let room = (self.channels.config.max_per_minute as usize).saturating_sub(self.sent.len());
        let mut due = due;
        let rest = if due.len() > room {
            due.split_off(room)
        } else {
            Vec::new()
        };
        for (i, p) in due {
            self.deliver(p, i >= stored);
        }
        if !rest.is_empty() {
            let digest_ok = self.last_digest.is_none_or(|t| now.duration_since(t) >= RATE_WINDOW);
            if digest_ok {
                self.digest(rest, stored);
            } else {
                let at = self.last_digest.map_or(now, |t| t + RATE_WINDOW);
                for (i, p) in rest {
                    self.retry.insert(p.notice.id.clone(), at);
                    if i >= stored {
                        self.volatile.push(p);
                    }
                }
            }
        }
        let next = self.retry.values().min().copied();
        next.map_or(IDLE, |at| at.saturating_duration_since(Instant::now()).min(IDLE))
    }

    /// Tries each channel still to deliver `p`; keeps (with its next try) what failed.
    fn deliver(&mut self, mut p: Pending, volatile: bool) {
        let mut left = Vec::new();
        let mut failed = false;
        let mut said = Vec::new();
        for name in std::mem::take(&mut p.channels) {
            let outcome = match Channel::parse(&name) {
                None => DeliveryOutcome::GaveUp {
                    error: format!("no channel is called `{name}`"),
                    attempt: p.attempts + 1,
                },
                Some(ch) if !self.channels.configured().contains(&ch) => DeliveryOutcome::GaveUp {
                    error: "the channel is no longer configured".into(),
                    attempt: p.attempts + 1,
                },
                Some(ch) => self.attempt(ch, &p.notice, p.attempts + 1),
            };
            if let DeliveryOutcome::Failed { .. } = outcome {
                left.push(name.clone());
                failed = true;
            }
            if let DeliveryOutcome::Delivered = outcome {
                self.sent.push_back(Instant::now());
            }
            said.push((name, outcome));
        }
        let notice = p.notice.clone();
        // Settled on disk first, so whoever reads the report finds the outbox as it says.
        self.settle(p, left, failed, volatile);
        for (name, outcome) in said {
            self.report(&notice, &name, outcome);
        }
    }

    /// One try through one channel, as its outcome (a skip is said once).
    fn attempt(&mut self, ch: Channel, notice: &Notice, attempt: u32) -> DeliveryOutcome {
        match self.channels.deliver(ch, notice) {
            Ok(Sent::Delivered) => DeliveryOutcome::Delivered,
            Ok(Sent::Skipped(why)) => DeliveryOutcome::Skipped { why },
            Err(error) if attempt >= MAX_ATTEMPTS => DeliveryOutcome::GaveUp { error, attempt },
            Err(error) => DeliveryOutcome::Failed {
                error,
                attempt,
                retry_in_s: backoff(attempt).as_secs(),
            },
        }
    }

    fn report(&mut self, notice: &Notice, channel: &str, outcome: DeliveryOutcome) {
        if let (DeliveryOutcome::Skipped { .. }, Some(ch)) = (&outcome, Channel::parse(channel))
            && !self.skipped.insert(ch)
        {
            return;
        }
        self.say(Report::Delivery(Delivery {
            id: notice.id.clone(),
            event: notice.event,
            agent: notice.agent.clone(),
            channel: channel.to_owned(),
            outcome,
        }));
    }

    /// Removes a notice every channel is done with, or rewrites it with the channels
    /// left and when to try them again.
    fn settle(&mut self, mut p: Pending, left: Vec<String>, failed: bool, volatile: bool) {
        let id = p.notice.id.clone();
        if left.is_empty() {
            self.retry.remove(&id);
            if !volatile {
                self.outbox.remove(&id);
            }
            return;
        }
        if failed {
            p.attempts += 1;
        }
        p.channels = left;
        self.retry.insert(id, Instant::now() + backoff(p.attempts));
        if volatile {
            self.volatile.push(p);
        } else if let Err(e) = self.outbox.post(&p) {
            self.say(Report::Warning(format!(
                "cannot rewrite outbox notice {}: {e}; it will be tried again",
                p.notice.id
            )));
        }
    }

    /// Past the rate cap: one notice standing for all of `rest`, through the channels
    /// any of them still needs; a channel that delivers it is done with each of them.
    fn digest(&mut self, rest: Vec<(usize, Pending)>, stored: usize) {
        self.last_digest = Some(Instant::now());
        let first = &rest[0].1.notice;
        let mut digest = notice(
            &first.project,
            NoticeKind::Digest,
            first.time,
            format!(
                "{} notices at once (more than max_per_minute = {})",
                rest.len(),
                self.channels.config.max_per_minute
            ),
        );
        digest.digest = rest
            .iter()
            .map(|(_, p)| format!("{}: {}", p.notice.title(), p.notice.reason))
            .collect();
        let mut names: Vec<String> = rest.iter().flat_map(|(_, p)| p.channels.clone()).collect();
        names.sort();
        names.dedup();
        let mut done = std::collections::BTreeSet::new();
        let mut failed = false;
        let mut said = Vec::new();
        for name in &names {
            let outcome = match Channel::parse(name) {
                Some(ch) if self.channels.configured().contains(&ch) => self.attempt(ch, &digest, 1),
                _ => DeliveryOutcome::GaveUp {
                    error: "the channel is no longer configured".into(),
                    attempt: 1,
                },
            };
            match outcome {
                DeliveryOutcome::Failed { .. } => failed = true,
                _ => {
                    done.insert(name.clone());
                }
            }
            said.push((name.clone(), outcome));
        }
        for (i, mut p) in rest {
            let left: Vec<String> = std::mem::take(&mut p.channels)
                .into_iter()
                .filter(|c| !done.contains(c))
                .collect();
            self.settle(p, left, failed, i >= stored);
        }
        for (name, outcome) in said {
            self.report(&digest, &name, outcome);
        }
    }
}

#[cfg(test)]
mod tests;
