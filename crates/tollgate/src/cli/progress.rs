//! Progress of long commands (flushing, importing) on standard error: a bar in a terminal,
//! a plain line every tenth of the way otherwise, so that logs of cron jobs and CI stay short.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress towards a known total.
pub(crate) struct Progress {
    total: u64,
    what: &'static str,
    bar: Option<ProgressBar>,
    /// The last tenth reported as a line (without a terminal).
    reported_tenth: u64,
}

impl Progress {
    /// Progress over `total` items, named `what` ("tokens deleted", "users read").
    pub(crate) fn new(total: u64, what: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!("{{bar:40}} {{pos}}/{{len}} {what} ({{eta}} left)");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            total,
            what,
            bar,
            reported_tenth: 0,
        }
    }

    /// Reports that `done` items are finished.
    pub(crate) fn set(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let tenth = (done.min(self.total) * 10)
                    .checked_div(self.total)
                    .unwrap_or(10);
                if tenth > self.reported_tenth {
                    self.reported_tenth = tenth;
                    eprintln!("{done} of {} {}", self.total, self.what);
                }
            }
        }
    }

    /// Removes the bar, leaving the terminal for the summary.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
