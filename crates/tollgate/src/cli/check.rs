//! `tollgate check`: make every check `serve` makes before it starts, and print the effective
//! settings.
//!
//! The checks are `serve`'s own (`startup::check`), so the two refuse the same settings with
//! the same message. `check` opens no database and no port: it does not tell whether the
//! database or Redis can be reached, nor check the keys stored in the database.

use tollgate_core::settings::{IgnoredSetting, RenamedSetting, UnknownVariable};
use tollgate_core::Settings;

use crate::config::KeyFile;

/// Options of `tollgate check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Exit 1 on `TOLLGATE_*` environment variables that name no setting, which `serve` only
    /// warns about (for CI, where a misspelt variable should stop the deployment).
    #[arg(long)]
    strict: bool,
}

pub(crate) fn run(
    settings: Settings,
    unknown_env: &[UnknownVariable],
    ignored: &[IgnoredSetting],
    renamed: &[RenamedSetting],
    args: Args,
) -> anyhow::Result<()> {
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
    for unknown in unknown_env {
        eprintln!("warning: {unknown}");
    }
    for setting in ignored {
        eprintln!("warning: {setting}");
    }
    for setting in renamed {
        eprintln!("warning: {setting}");
    }
    if args.strict && !unknown_env.is_empty() {
        anyhow::bail!(
            "--strict: {} unknown TOLLGATE_* environment variable(s); remove or correct them",
            unknown_env.len()
        );
    }
    eprintln!("configuration is valid");
    Ok(())
}
