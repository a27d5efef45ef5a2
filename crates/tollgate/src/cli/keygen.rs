//! `tollgate keygen`: write a new signing key (a PEM pair, or a random secret for HS*).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tollgate_core::{keygen, Algorithm};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The algorithm the key is for: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384,
    /// EdDSA.
    #[arg(long, value_parser = parse_algorithm, default_value = "ES256")]
    alg: Algorithm,
    /// Write `signing_key.pem` and `verifying_key.pem` (HS*: `signing_key.txt`) into this
    /// directory instead of printing the key to standard output. Existing files are not
    /// overwritten.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    name.parse().map_err(|()| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        format!("unknown algorithm; one of {}", names.join(", "))
    })
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let key = keygen::generate(args.alg)?;
    let Some(dir) = args.out else {
        let mut out = std::io::stdout().lock();
        out.write_all(key.signing_key.expose().as_bytes())?;
        if let Some(public) = &key.verifying_key {
            out.write_all(public.as_bytes())?;
        } else {
            out.write_all(b"\n")?;
        }
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let signing_name = if key.verifying_key.is_some() {
        "signing_key.pem"
    } else {
        "signing_key.txt"
    };
    let signing = dir.join(signing_name);
    write_new(&signing, key.signing_key.expose().as_bytes(), true)?;
    eprintln!("wrote {}", signing.display());
    eprintln!("  ALGORITHM = \"{}\"", args.alg.as_str());
    eprintln!("  SIGNING_KEY: the contents of {signing_name}");
    if let Some(public) = &key.verifying_key {
        let verifying = dir.join("verifying_key.pem");
        write_new(&verifying, public.as_bytes(), false)?;
        eprintln!("wrote {}", verifying.display());
        eprintln!("  VERIFYING_KEY: the contents of verifying_key.pem");
    }
    Ok(())
}

/// Creates `path` (refusing to replace a key) readable by its owner only when `private`.
fn write_new(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}
