//! A fake SMTP server on 127.0.0.1:0 that accepts every message in plain text (no TLS, no
//! sign-in) and hands each one's content to the test.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The addresses of `MAIL FROM` and `RCPT TO`.
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, with the lines' dot-stuffing undone.
    pub data: String,
}

impl ReceivedMail {
    /// The message with its quoted-printable encoding undone: soft line breaks joined and
    /// `=XX` escapes decoded, as a mail client shows a long line.
    pub fn text(&self) -> String {
        let joined = self.data.replace("=\n", "");
        let mut text = Vec::with_capacity(joined.len());
        let mut bytes = joined.bytes();
        while let Some(byte) = bytes.next() {
            let escaped = (byte == b'=')
                .then(|| {
                    let hex = [bytes.clone().next()?, bytes.clone().nth(1)?];
                    u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()
                })
                .flatten();
            match escaped {
                Some(decoded) => {
                    text.push(decoded);
                    bytes.nth(1);
                }
                None => text.push(byte),
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

pub struct FakeSmtp {
    pub port: u16,
    received: Mutex<mpsc::UnboundedReceiver<ReceivedMail>>,
}

impl FakeSmtp {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (sender, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    if let Err(error) = converse(connection, sender).await {
                        tracing::warn!(%error, "fake SMTP connection failed");
                    }
                });
            }
        });
        Ok(Self {
            port,
            received: Mutex::new(received),
        })
    }

    /// The next message, or `None` when none arrives within `wait`.
    pub async fn next_mail(&self, wait: Duration) -> Option<ReceivedMail> {
        let mut received = self.received.lock().await;
        tokio::time::timeout(wait, received.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Speaks the server's side of one SMTP session.
async fn converse(
    connection: tokio::net::TcpStream,
    sender: mpsc::UnboundedSender<ReceivedMail>,
) -> std::io::Result<()> {
    let (reader, mut writer) = connection.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer.write_all(b"220 fake-smtp ready\r\n").await?;
    let mut mail = ReceivedMail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    while let Some(line) = lines.next_line().await? {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 fake-smtp\r\n"
        } else if command.starts_with("MAIL FROM:") {
            mail.from = address(&line);
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            mail.to.push(address(&line));
            b"250 OK\r\n"
        } else if command == "DATA" {
            writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            mail.data.clear();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                mail.data.push_str(line.strip_prefix('.').unwrap_or(&line));
                mail.data.push('\n');
            }
            let _ = sender.send(mail.clone());
            mail.to.clear();
            b"250 OK: queued\r\n"
        } else if command == "QUIT" {
            writer.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if command == "RSET" || command == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        writer.write_all(reply).await?;
    }
    Ok(())
}

/// The address in `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_string())
        .unwrap_or_default()
}
