//! `tollgate check`: make every check `serve` makes before it starts, and print the effective
//! settings.
//!
//! The checks are `serve`'s own (`startup::check`), so the two refuse the same settings with
//! the same message. `check` opens no database and no port: it does not tell whether the
//! database or Redis can be reached, nor check the keys stored in the database.

use tollgate_core::Settings;

use crate::config::KeyFile;

pub(crate) fn run(settings: Settings) -> anyhow::Result<()> {
    let checked = crate::startup::check(settings.clone(), None, KeyFile::ReadOnly)?;
    // The settings as configured: a generated development key is not one.
    for (key, value) in settings.effective() {
        let value = if key == "DATABASE_URL" {
            super::redact_url(&value)
        } else {
            value
        };
        println!("{key} = {value}");
    }
    for warning in checked.warnings() {
        eprintln!("warning: {warning}");
    }
    eprintln!("configuration is valid");
    Ok(())
}
