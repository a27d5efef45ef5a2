//! Mail: messages composed from templates when a flow needs one (a password reset link, a
//! notice), put in the outbox, and sent over SMTP by the outbox's sender.
//!
//! Each message has a subject, a text part and an HTML part, made from the templates
//! `<name>.subject.txt`, `<name>.txt` and `<name>.html` (minijinja; the HTML part escapes what
//! it inserts). Built-in templates are compiled into the binary; EMAIL_TEMPLATES_DIR replaces
//! them file by file. Every template is compiled at start-up, so a broken one stops the server
//! before it sends anything.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_core::Settings;

/// The templates a flow can use, each as (name, subject, text, html).
const BUILT_IN: [(&str, &str, &str, &str); 5] = [
    (
        "email_change",
        include_str!("templates/email_change.subject.txt"),
        include_str!("templates/email_change.txt"),
        include_str!("templates/email_change.html"),
    ),
    (
        "email_change_notice",
        include_str!("templates/email_change_notice.subject.txt"),
        include_str!("templates/email_change_notice.txt"),
        include_str!("templates/email_change_notice.html"),
    ),
    (
        "activation",
        include_str!("templates/activation.subject.txt"),
        include_str!("templates/activation.txt"),
        include_str!("templates/activation.html"),
    ),
    (
        "password_reset",
        include_str!("templates/password_reset.subject.txt"),
        include_str!("templates/password_reset.txt"),
        include_str!("templates/password_reset.html"),
    ),
    (
        "password_changed",
        include_str!("templates/password_changed.subject.txt"),
        include_str!("templates/password_changed.txt"),
        include_str!("templates/password_changed.html"),
    ),
];

/// How long one SMTP exchange may take before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A composed message, as the outbox keeps it until it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// Why mail could not be set up from the settings.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MailSetupError {
    #[error("setting SMTP_URL: {0}")]
    SmtpUrl(String),
    #[error("setting EMAIL_FROM: {0:?} is not an address or `Name <address>`")]
    From(String),
    #[error("setting EMAIL_TEMPLATES_DIR: {0}")]
    Templates(String),
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct SendError {
    /// The server refused it for good (a 5xx answer, a malformed address): retrying would
    /// fail the same way.
    pub(crate) permanent: bool,
    pub(crate) message: String,
}

/// Composes and sends mail: the sender address, the templates and the SMTP transport.
pub(crate) struct Mailer {
    from: Mailbox,
    templates: Environment<'static>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the SMTP credentials.
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// The mailer the settings describe; `None` when SMTP_URL is unset (mail is off).
    pub(crate) fn from_settings(settings: &Settings) -> Result<Option<Mailer>, MailSetupError> {
        if settings.smtp_url.is_empty() {
            return Ok(None);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())
            // The error names what is wrong with the URL, never the URL (it holds a password).
            .map_err(|err| MailSetupError::SmtpUrl(err.to_string()))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = settings
            .email_from
            .parse::<Mailbox>()
            .map_err(|_| MailSetupError::From(settings.email_from.clone()))?;
        let templates = templates(settings.email_templates_dir.as_deref())?;
        Ok(Some(Mailer {
            from,
            templates,
            transport,
        }))
    }

    /// The message of template `name` to `to`, with `context` for its placeholders.
    pub(crate) fn compose(&self, name: &str, to: &str, context: &Value) -> Result<Mail, String> {
        let render = |part: &str| {
            self.templates
                .get_template(&format!("{name}.{part}"))
                .and_then(|template| template.render(context))
                .map_err(|err| format!("template {name}.{part}: {err}"))
        };
        Ok(Mail {
            to: to.to_owned(),
            subject: render("subject.txt")?.trim().to_owned(),
            text: render("txt")?,
            html: render("html")?,
        })
    }

    /// Sends `mail` over SMTP.
    pub(crate) async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let permanent = |message: String| SendError {
            permanent: true,
            message,
        };
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|err| permanent(format!("recipient {:?}: {err}", mail.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|err| permanent(err.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| SendError {
                permanent: err.is_permanent(),
                message: err.to_string(),
            })
    }
}

/// The built-in templates, each replaced by the file of the same name in `dir` if there is one.
fn templates(dir: Option<&str>) -> Result<Environment<'static>, MailSetupError> {
    let mut env = Environment::new();
    if let Some(dir) = dir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(MailSetupError::Templates(format!("{dir} is not a folder")));
        }
    }
    for (name, subject, text, html) in BUILT_IN {
        for (part, built_in) in [("subject.txt", subject), ("txt", text), ("html", html)] {
            let file = format!("{name}.{part}");
            let source = match dir.map(|dir| std::path::Path::new(dir).join(&file)) {
                Some(path) if path.exists() => std::fs::read_to_string(&path).map_err(|err| {
                    MailSetupError::Templates(format!("cannot read {}: {err}", path.display()))
                })?,
                _ => built_in.to_owned(),
            };
            env.add_template_owned(file.clone(), source)
                .map_err(|err| MailSetupError::Templates(format!("{file}: {err}")))?;
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(dir: Option<&str>) -> Settings {
        Settings {
            smtp_url: tollgate_core::settings::Secret("smtp://127.0.0.1:2525".to_owned()),
            email_templates_dir: dir.map(str::to_owned),
            ..Settings::default()
        }
    }

    #[test]
    fn mail_is_off_without_smtp_url() {
        assert!(Mailer::from_settings(&Settings::default())
            .expect("valid")
            .is_none());
    }

    #[test]
    fn the_html_part_escapes_what_it_inserts() {
        let mailer = Mailer::from_settings(&settings(None)).unwrap().unwrap();
        let context = json!({
            "user": {"username": "<b>ann</b>"},
            "link": "https://app.example.com/reset/MQ/abc?x=1&y=2",
            "valid_for": "1 hour",
        });
        let mail = mailer
            .compose("password_reset", "ann@example.com", &context)
            .expect("composes");
        assert_eq!(mail.subject, "Reset your password");
        assert!(mail.text.contains("Hello <b>ann</b>,"), "{}", mail.text);
        assert!(mail
            .text
            .contains("https://app.example.com/reset/MQ/abc?x=1&y=2"));
        assert!(
            mail.html.contains("Hello &lt;b&gt;ann&lt;"),
            "{}",
            mail.html
        );
        assert!(!mail.html.contains("<b>ann"), "{}", mail.html);
        assert!(mail.html.contains("abc?x=1&amp;y=2"), "{}", mail.html);
    }

    #[test]
    fn a_templates_folder_replaces_built_ins_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("password_reset.subject.txt"),
            "{{ user.username }}, your link",
        )
        .unwrap();
        let path = dir.path().to_str().unwrap();
        let mailer = Mailer::from_settings(&settings(Some(path)))
            .unwrap()
            .unwrap();
        let context = json!({"user": {"username": "ann"}, "link": "l", "valid_for": "1 hour"});
        let mail = mailer.compose("password_reset", "a@b.c", &context).unwrap();
        assert_eq!(mail.subject, "ann, your link");
        assert!(
            mail.text.starts_with("Hello ann,"),
            "the built-in text stays"
        );

        std::fs::write(dir.path().join("password_reset.html"), "{% if %}").unwrap();
        let err = Mailer::from_settings(&settings(Some(path))).unwrap_err();
        assert!(err.to_string().contains("password_reset.html"), "{err}");
        let err = Mailer::from_settings(&settings(Some("/no/such/folder"))).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
    }

    #[test]
    fn a_bad_smtp_url_or_sender_is_refused_without_showing_the_password() {
        let mut bad = settings(None);
        bad.smtp_url = tollgate_core::settings::Secret("imap://ann:hunter2@mail".to_owned());
        let err = Mailer::from_settings(&bad).unwrap_err().to_string();
        assert!(err.starts_with("setting SMTP_URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let mut bad = settings(None);
        bad.email_from = "not an address".to_owned();
        let err = Mailer::from_settings(&bad).unwrap_err().to_string();
        assert!(err.starts_with("setting EMAIL_FROM"), "{err}");
    }
}
