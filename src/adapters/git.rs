//! Gathering a checkpoint before vigil replaces a stuck incarnation: the pane's last
//! lines and, when the agent's cwd is a git work tree, its branch, last commit and
//! changed files. Each `git` call is bounded; a missing or slow git only leaves that
//! part out. Writing it down is the store's job.

use std::path::Path;
use std::time::Duration;

use crate::adapters::helper;
use crate::store::GitState;

const GIT_TIMEOUT: Duration = Duration::from_secs(5);
const GIT_OUTPUT: usize = 256 * 1024;
/// Changed files listed at most (a generated tree can have thousands).
const MODIFIED_MAX: usize = 200;

fn git(cwd: &Path, args: &[&str]) -> Option<String> {
    let mut argv = vec!["git".to_owned(), "-C".to_owned(), cwd.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    helper::run(&argv, cwd, b"", GIT_TIMEOUT, GIT_OUTPUT).ok()
}

/// The git state of `cwd`, or `None` when it is not a work tree git can read.
pub fn git_state(cwd: &Path) -> Option<GitState> {
    let branch = git(cwd, &["rev-parse", "--abbrev-ref", "HEAD"])?.trim().to_owned();
    let last_commit = git(cwd, &["log", "-1", "--format=%h %s"])
        .unwrap_or_default()
        .trim()
        .to_owned();
    let modified = git(cwd, &["status", "--porcelain"])
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(MODIFIED_MAX)
        .map(str::to_owned)
        .collect();
    Some(GitState {
        branch,
        last_commit,
        modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_work_tree_gives_branch_commit_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let sh = |script: &str| {
            let ok = std::process::Command::new("sh")
                .args(["-c", script])
                .current_dir(dir.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .status()
                .unwrap()
                .success();
            assert!(ok, "{script}");
        };
        assert_eq!(git_state(dir.path()), None, "not a repository yet");
        sh("git init -q -b work && echo a > a && git add a && git commit -qm 'first step' && echo b > b");
        let state = git_state(dir.path()).unwrap();
        assert_eq!(state.branch, "work");
        assert!(state.last_commit.ends_with(" first step"), "{}", state.last_commit);
        assert_eq!(state.modified, vec!["?? b"]);
    }
}
