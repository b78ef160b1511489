//! `vigil completions SHELL` and `vigil man`: shell completions and the man page,
//! generated from the same clap definitions the command line parses with, so they never
//! drift from it. Needs no project: prints to stdout and reads nothing.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use super::out;

/// Prints the completion script for `shell` (source it, or put it where the shell
/// looks: `~/.local/share/bash-completion/completions/vigil`, a `_vigil` on `fpath`,
/// `~/.config/fish/completions/vigil.fish`).
pub fn completions(shell: Shell) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vigil", &mut buf);
    out::print(&String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page (roff), `vigil(1)`, with every subcommand and its options.
/// `vigil man > vigil.1 && man -l vigil.1`.
pub fn man() -> Result<ExitCode> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .context("rendering the man page")?;
    // One page for everything: each subcommand's options follow as its own section.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let roff = format!(".SH \"VIGIL {}\"\n", name.to_uppercase());
        buf.extend_from_slice(roff.as_bytes());
        let man = clap_mangen::Man::new(sub.clone().bin_name(format!("vigil {name}")));
        let mut section = Vec::new();
        man.render_description_section(&mut section)
            .and_then(|()| man.render_synopsis_section(&mut section))
            .and_then(|()| man.render_options_section(&mut section))
            .context("rendering the man page")?;
        // Demote the sub-page's own .SH headings under this section.
        let text = String::from_utf8_lossy(&section).replace(".SH ", ".SS ");
        buf.extend_from_slice(text.as_bytes());
    }
    out::print(&String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}
