//! A real SMTP server for tests: aiosmtpd (PyPI; `scripts/test-deps.sh` installs it and exports
//! `INKWIRE_TEST_SMTP_PYTHON`), on a free port, keeping what it receives in a maildir.

// Each test binary uses its own part of these.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An SMTP server on a free port, keeping what it receives in a maildir.
pub struct Sink {
    child: Child,
    port: u16,
    maildir: super::TempDir,
    seen: HashSet<PathBuf>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received email.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub list_unsubscribe: Option<String>,
    pub one_click: Option<String>,
}

impl Sink {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let python = std::env::var("INKWIRE_TEST_SMTP_PYTHON").unwrap_or_else(|_| {
            panic!(
                "INKWIRE_TEST_SMTP_PYTHON is not set: run the tests through scripts/test.sh, \
                 whose scripts/test-deps.sh installs aiosmtpd (PyPI) as the SMTP server"
            )
        });
        let maildir = super::TempDir::new();
        let port = super::free_port();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.0.join("box"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{python} -m aiosmtpd: {e}"));
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the SMTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            maildir,
            seen: HashSet::new(),
        }
    }

    /// Its URL, for `--smtp-url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Where what it receives lands, one file per email.
    pub fn new_mail_dir(&self) -> PathBuf {
        self.maildir.0.join("box").join("new")
    }

    /// A mailer sending here, with links to `site`, at most one email per `window`.
    pub fn config(&self, site: &str, window: Duration) -> command_service::mail::MailConfig {
        command_service::mail::MailConfig {
            smtp_url: self.url(),
            from: "Inkwire test <inkwire@blog.test>".into(),
            public_url: site.into(),
            window,
            poll: Duration::from_millis(100),
        }
    }

    /// The emails that arrived since the last look, oldest first.
    pub fn arrived(&mut self) -> Vec<Mail> {
        let dir = self.new_mail_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut new: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| !self.seen.contains(p))
            .map(|p| (p.metadata().and_then(|m| m.modified()).expect("mtime"), p))
            .collect();
        new.sort();
        new.into_iter()
            .map(|(_, path)| {
                self.seen.insert(path.clone());
                parse(&path)
            })
            .collect()
    }

    /// The next email, within `within`.
    pub async fn next(&mut self, within: Duration) -> Mail {
        let until = Instant::now() + within;
        loop {
            let mut mails = self.arrived();
            if !mails.is_empty() {
                assert_eq!(mails.len(), 1, "more than one email at once: {mails:?}");
                return mails.remove(0);
            }
            assert!(Instant::now() < until, "no email within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Nothing arrives for `quiet`.
    pub async fn nothing_for(&mut self, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        let mails = self.arrived();
        assert!(mails.is_empty(), "unexpected email: {mails:?}");
    }
}

fn parse(path: &Path) -> Mail {
    let raw = std::fs::read(path).expect("read mail");
    let mail = mailparse::parse_mail(&raw).expect("a well-formed email");
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
    };
    Mail {
        to: header("To").unwrap_or_default(),
        subject: header("Subject").unwrap_or_default(),
        body: mail.get_body().expect("body").replace("\r\n", "\n"),
        list_unsubscribe: header("List-Unsubscribe"),
        one_click: header("List-Unsubscribe-Post"),
    }
}
