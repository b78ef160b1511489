//! The tmux vigil uses: the control-mode client by default, with the CLI answering any
//! call control mode cannot (no client yet, the server or the client gone, a hung or
//! garbled reply); or the CLI alone, chosen by `[vigil] tmux_client` or the
//! `VIGIL_TMUX_CLIENT` environment variable. One concrete type for every caller.

use std::sync::Arc;

use super::TmuxError;
use super::cli::TmuxCli;
use super::commands::{Effect, Exec, each_alone};
use super::control::{Control, Unavailable};
use super::listing::LastListing;

/// The environment variable that overrides `[vigil] tmux_client` (`control` or `cli`).
pub const CLIENT_ENV: &str = "VIGIL_TMUX_CLIENT";

/// Which way vigil talks to tmux.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// One long-lived `tmux -C` client; the CLI where it cannot answer.
    #[default]
    Control,
    /// A `tmux` process per call.
    Cli,
}

impl ClientKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "control" => Some(Self::Control),
            "cli" => Some(Self::Cli),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Cli => "cli",
        }
    }

    /// `configured`, unless `VIGIL_TMUX_CLIENT` names a kind; a value it cannot read
    /// is ignored (with a warning), never a reason to stop.
    pub fn from_env_or(configured: Self) -> Self {
        match std::env::var(CLIENT_ENV) {
            Ok(v) if v.is_empty() => configured,
            Ok(v) => Self::parse(&v).unwrap_or_else(|| {
                eprintln!("vigil: ignoring {CLIENT_ENV}={v:?}: expected `control` or `cli`");
                configured
            }),
            Err(_) => configured,
        }
    }
}

/// tmux, on the user's default server or a named socket, through the chosen client.
/// Clones share one control client.
#[derive(Clone, Debug, Default)]
pub struct TmuxClient {
    cli: TmuxCli,
    control: Option<Arc<Control>>,
    /// The last full listing, which glances stand on.
    last: Arc<LastListing>,
}

impl TmuxClient {
    pub fn new(socket: Option<String>, kind: ClientKind) -> Self {
        let cli = TmuxCli::new(socket);
        let control = (kind == ClientKind::Control).then(|| Arc::new(Control::new(cli.clone())));
        Self {
            cli,
            control,
            last: Arc::default(),
        }
    }

    pub fn kind(&self) -> ClientKind {
        match self.control {
            Some(_) => ClientKind::Control,
            None => ClientKind::Cli,
        }
    }

    /// The CLI client underneath, for what is not supervision (notices to clients).
    pub fn cli(&self) -> &TmuxCli {
        &self.cli
    }

    pub fn socket(&self) -> Option<&str> {
        self.cli.socket()
    }

    /// The argv prefix that reaches this server (`tmux -L name`).
    pub fn base_argv(&self) -> Vec<String> {
        self.cli.base_argv()
    }

    /// The pid of the running `tmux -C` child, if one runs.
    pub fn control_pid(&self) -> Option<u32> {
        self.control.as_ref().and_then(|c| c.client_pid())
    }
}

impl Exec for TmuxClient {
    fn last_listing(&self) -> Option<&LastListing> {
        Some(&self.last)
    }

    fn exec(&self, commands: &[Vec<String>], effect: Effect) -> Result<String, TmuxError> {
        self.run(commands, effect, Answer::Last)
    }

    fn exec_all(&self, commands: &[Vec<String>], effect: Effect) -> Result<String, TmuxError> {
        self.run(commands, effect, Answer::All)
    }

    /// Looks are sent all at once through the control client: one write, one wake-up
    /// of the server for a pass's captures. Anything else, and a control client that
    /// cannot answer, goes one by one as [`Exec::exec`] does.
    fn exec_each(&self, commands: &[Vec<String>], effect: Effect) -> Vec<Result<Vec<String>, TmuxError>> {
        let Some(control) = self.control.as_ref().filter(|_| effect == Effect::Look) else {
            return each_alone(commands, |c| self.exec(c, effect));
        };
        match control.run_each(commands) {
            Ok(outcomes) if outcomes.len() == commands.len() => commands
                .iter()
                .zip(outcomes)
                .map(|(c, outcome)| match outcome {
                    Ok(lines) => Ok(lines),
                    Err(stderr) => Err(TmuxError::Failed {
                        args: shown(std::slice::from_ref(c)),
                        stderr,
                    }),
                })
                .collect(),
            Err(Unavailable::NoServer(stderr)) => commands
                .iter()
                .map(|c| {
                    Err(TmuxError::Failed {
                        args: shown(std::slice::from_ref(c)),
                        stderr: stderr.clone(),
                    })
                })
                .collect(),
            // Out of step or unavailable: looks are harmless to ask again, by the CLI.
            _ => each_alone(commands, |c| self.cli.exec(c, effect)),
        }
    }
}

/// Which output of a list of commands a caller wants.
#[derive(Clone, Copy)]
enum Answer {
    /// The last command's (what a command list run for its effect prints).
    Last,
    /// Every command's, in order, joined as the CLI prints them.
    All,
}

impl TmuxClient {
    /// Runs `commands` back to back through the control client where it can answer,
    /// else through the CLI; the output `answer` asks for.
    fn run(&self, commands: &[Vec<String>], effect: Effect, answer: Answer) -> Result<String, TmuxError> {
        let Some(control) = &self.control else {
            return self.cli.exec(commands, effect);
        };
        let failed = |stderr: String| TmuxError::Failed {
            args: shown(commands),
            stderr,
        };
        match control.run(commands) {
            Ok(outcomes) if outcomes.is_empty() => Err(failed("no answer".into())),
            Ok(outcomes) => {
                let mut out = Vec::new();
                for outcome in outcomes {
                    let lines = outcome.map_err(failed)?;
                    if matches!(answer, Answer::Last) {
                        out.clear();
                    }
                    out.extend(lines);
                }
                Ok(out.join("\n"))
            }
            // The probe's own answer, as the CLI would have given it; unless the
            // commands are meant to start a server, which only the CLI does.
            Err(Unavailable::NoServer(stderr)) if effect != Effect::Start => Err(failed(stderr)),
            // Sent, answer lost: a look or a kill is asked again; typing or a start
            // may have happened, and doing it twice is worse than an error.
            Err(Unavailable::Lost(why)) if !effect.repeatable() => Err(failed(format!(
                "the control client lost the answer ({why}); not run again"
            ))),
            Err(_) => self.cli.exec(commands, effect),
        }
    }
}

/// The first command as it may be shown in an error: `-e` values left out.
fn shown(commands: &[Vec<String>]) -> String {
    let first: Vec<&str> = commands
        .first()
        .map(|c| c.iter().map(String::as_str).collect())
        .unwrap_or_default();
    super::cli::described(&first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_kind_reads_control_or_cli_and_nothing_else() {
        assert_eq!(ClientKind::parse("control"), Some(ClientKind::Control));
        assert_eq!(ClientKind::parse("cli"), Some(ClientKind::Cli));
        assert_eq!(ClientKind::parse("CLI"), None);
        assert_eq!(ClientKind::default(), ClientKind::Control);
        assert_eq!(TmuxClient::new(None, ClientKind::Cli).kind(), ClientKind::Cli);
        assert_eq!(TmuxClient::new(None, ClientKind::Control).kind(), ClientKind::Control);
    }
}
