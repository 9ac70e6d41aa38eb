//! A progress bar for long runs (indicatif), drawn on stderr only when
//! stdout is a terminal and the run is expected to last a couple of seconds.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Runs shorter than this get no bar.
const SHOW_AFTER: Duration = Duration::from_secs(2);

/// A progress bar over `len` steps, or nothing when it would only flicker or
/// when stdout is not a terminal (piped into a file, run by a test).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `len` steps of a run expected to last about `expected`.
    pub fn new(len: usize, expected: Duration) -> Progress {
        let show = std::io::stdout().is_terminal() && expected >= SHOW_AFTER;
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len as u64), target);
        if show {
            if let Ok(style) =
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { bar }
    }

    /// Names the step now running.
    pub fn start(&self, what: impl Into<String>) {
        self.bar.set_message(what.into());
    }

    /// Marks a step done.
    pub fn done(&self) {
        self.bar.inc(1);
    }

    /// Prints a line of results on stdout without tearing the bar.
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.suspend(|| println!("{}", line.as_ref()));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
