//! `tollgate healthcheck`: ask a running server's `/healthz`, and exit 0 when it answers 200,
//! 1 otherwise. For a container's `HEALTHCHECK`: the runtime image has no curl.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tollgate_core::Settings;

/// The path asked: the liveness endpoint, which answers without the database.
const PATH: &str = "/healthz";

/// Options of `tollgate healthcheck`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server's address, HOST:PORT. Default: the BIND setting, asked on loopback when it
    /// is every interface (0.0.0.0 or [::]).
    #[arg(long, value_name = "HOST:PORT")]
    address: Option<String>,
    /// How long to wait for the answer, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub(crate) async fn run(settings: &Settings, args: Args) -> anyhow::Result<()> {
    let address = args
        .address
        .unwrap_or_else(|| local_address(&settings.bind));
    let url = format!("http://{address}{PATH}");
    let status = tokio::time::timeout(args.timeout, status_of(&address))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "GET {url} did not answer within {}",
                tollgate_core::settings::format_duration(args.timeout)
            )
        })?
        .with_context(|| format!("GET {url} failed"))?;
    if status != 200 {
        bail!("GET {url} answered {status}");
    }
    println!("GET {url} answered 200");
    Ok(())
}

/// Where a client on this host reaches a server bound to `bind`: a server on every interface
/// is reached on loopback.
fn local_address(bind: &str) -> String {
    match bind.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let ip = if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(ip, addr.port()).to_string()
        }
        _ => bind.to_owned(),
    }
}

/// The status code of `GET /healthz` at `address`, read from the answer's status line.
async fn status_of(address: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: tollgate-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut line = Vec::new();
    BufReader::new(stream)
        .take(1024)
        .read_until(b'\n', &mut line)
        .await?;
    let line = String::from_utf8_lossy(&line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(code))) if version.starts_with("HTTP/1.") => Ok(code),
        _ => bail!("not an HTTP answer: {:?}", line.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_asked_on_loopback() {
        assert_eq!(local_address("0.0.0.0:8000"), "127.0.0.1:8000");
        assert_eq!(local_address("[::]:8000"), "[::1]:8000");
        assert_eq!(local_address("10.1.2.3:80"), "10.1.2.3:80");
        assert_eq!(local_address("localhost:8000"), "localhost:8000");
    }
}
