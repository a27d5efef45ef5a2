//! A real SMTP server for the mail tests: aiosmtpd (Python), started on a free port, storing
//! every message it accepts in a Maildir that the test reads.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// An SMTP server on `port`; killed when dropped. Its Maildir outlives it (a server started
/// again on the same folder adds to it).
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    pub(crate) maildir: PathBuf,
}

impl SmtpServer {
    /// A server on a free port, with a Maildir in `dir`.
    pub(crate) fn start_in(dir: &std::path::Path) -> SmtpServer {
        SmtpServer::start(super::redis_server::free_port(), dir.join("maildir"))
    }

    /// A server on `port` storing into `maildir`.
    pub(crate) fn start(port: u16, maildir: PathBuf) -> SmtpServer {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd starts (pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start: is it installed (pip install aiosmtpd)?"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SmtpServer {
            child,
            port,
            maildir,
        }
    }

    /// The SMTP_URL of this server.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A delivered message: its headers and its text part, decoded.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) raw: String,
}

/// Every message in `maildir`, oldest first.
pub(crate) fn delivered(maildir: &std::path::Path) -> Vec<Delivered> {
    let mut files: Vec<_> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
    files
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|raw| parse(&raw))
        .collect()
}

/// Waits until `maildir` holds at least `count` messages to `to`, and returns those.
pub(crate) async fn wait_for(
    maildir: &std::path::Path,
    to: &str,
    count: usize,
    limit: Duration,
) -> Vec<Delivered> {
    let started = Instant::now();
    loop {
        let mine: Vec<Delivered> = delivered(maildir)
            .into_iter()
            .filter(|mail| mail.to.contains(to))
            .collect();
        if mine.len() >= count {
            return mine;
        }
        assert!(
            started.elapsed() < limit,
            "{count} mails to {to} not delivered within {limit:?}; got {mine:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `uid` and `token` of the link in `text` that starts with `prefix` (the page's URL up to
/// `{uid}`), as `prefix{uid}/{token}`.
pub(crate) fn link_in(text: &str, prefix: &str) -> (String, String) {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link {prefix}… in {text}"))
        + prefix.len();
    let rest: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let (uid, token) = rest.split_once('/').expect("uid/token");
    (uid.to_owned(), token.to_owned())
}

fn parse(raw: &str) -> Delivered {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let header = |name: &str| {
        unfold(head)
            .into_iter()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    Delivered {
        to: header("To"),
        subject: header("Subject"),
        text: text_part(&header("Content-Type"), body),
        raw: raw.clone(),
    }
}

/// Header lines with their continuation lines joined.
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.lines() {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line.trim_start()),
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

/// The `text/plain` part of a body, decoded.
fn text_part(content_type: &str, body: &str) -> String {
    let Some(boundary) = content_type
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return body.to_owned();
    };
    for part in body.split(&format!("--{boundary}")) {
        let (head, content) = part
            .trim_start_matches('\n')
            .split_once("\n\n")
            .unwrap_or(("", ""));
        let head = head.to_ascii_lowercase();
        if !head.contains("text/plain") {
            continue;
        }
        return if head.contains("quoted-printable") {
            quoted_printable(content)
        } else if head.contains("base64") {
            let joined: String = content.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(joined)
                .expect("base64 part");
            String::from_utf8(bytes).expect("UTF-8 text")
        } else {
            content.to_owned()
        };
    }
    panic!("no text/plain part in {body}");
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() + 1 {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..(i + 3).min(joined.len())], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 text")
}
