//! Posting a notice to a webhook over HTTP(S) (rustls; `http://` for local receivers),
//! with one deadline over the whole request and a bounded read of the answer. The
//! body's shape (the JSON, ntfy's text and headers, Slack's `{"text"}`) is given by the
//! caller; this only carries it.

use std::time::Duration;

/// Most of an answer read (for the error message of a refusal).
const MAX_ANSWER: u64 = 4096;

/// One request to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub url: String,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Http(#[from] ureq::Error),
    #[error("answered HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Refused { status: u16, body: String },
}

/// Sends `post`; a 2xx answer is delivered, anything else (a refusal, no answer within
/// `timeout`, no connection) an error that says which.
pub fn send(post: &Post, timeout: Duration) -> Result<(), WebhookError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.post(&post.url).header("Content-Type", post.content_type);
    for (name, value) in &post.headers {
        request = request.header(*name, header_value(value));
    }
    let response = request.send(&post.body[..])?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = response
        .into_body()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .unwrap_or_default();
    let body: String = body
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    Err(WebhookError::Refused { status, body })
}

/// A header value that HTTP can carry: printable ASCII only (anything else becomes
/// `?`), at most 200 characters.
fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A receiver that answers one request with `status` and hands back what it read.
    fn receiver(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope");
            conn.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn a_post_carries_its_body_and_headers_and_a_refusal_says_its_status() {
        let (url, got) = receiver("200 OK");
        let post = Post {
            url,
            content_type: "text/plain",
            headers: vec![("Title", "vigil: a waiting\u{1b}".into())],
            body: b"hello".to_vec(),
        };
        send(&post, Duration::from_secs(10)).unwrap();
        let got = got.join().unwrap();
        assert!(got.starts_with("POST /hook"), "{got}");
        assert!(
            got.contains("Title: vigil: a waiting?") || got.contains("title: vigil: a waiting?"),
            "{got}"
        );
        assert!(got.ends_with("hello"), "{got}");
        let (url, _got) = receiver("503 Service Unavailable");
        let err = send(&Post { url, ..post }, Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.to_string(), "answered HTTP 503: nope");
    }

    #[test]
    fn nobody_listening_is_an_error() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let post = Post {
            url: format!("http://127.0.0.1:{port}/"),
            content_type: "application/json",
            headers: vec![],
            body: b"{}".to_vec(),
        };
        assert!(send(&post, Duration::from_secs(5)).is_err());
    }
}
