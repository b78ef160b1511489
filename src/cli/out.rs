//! Writing to stdout for a command: a reader that goes away (`vigil status | head -1`)
//! ends the command quietly with exit 0, never a panic; any other write error is said
//! once on stderr.

use std::io::Write;

/// Writes `text` to stdout as it is (callers end their lines). On a closed pipe the
/// process ends here, with exit 0: there is no one left to tell anything.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => eprintln!("vigil: cannot write to stdout: {e}"),
    }
}

/// `println!` for commands: through [`print`], so a closed pipe is a quiet exit 0.
macro_rules! say {
    () => {
        $crate::cli::out::print("\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::out::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;
