//! Test helpers shared by the integration tests: a minimal HTTP/1.1 request reader for scripted
//! loopback servers (no framework, so a test controls every byte it answers).

#![allow(dead_code)]

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A captured request.
#[derive(Debug, Clone)]
pub struct Captured {
    pub head: String,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The headers as a `HeaderMap` (for `parse_callback`).
    pub fn header_map(&self) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for l in self.head.lines().skip(1) {
            if let Some((k, v)) = l.split_once(':') {
                if let (Ok(k), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                    reqwest::header::HeaderValue::from_str(v.trim()),
                ) {
                    map.append(k, v);
                }
            }
        }
        map
    }
}

/// Reads one request (head + `Content-Length` body); `None` if the peer closes early.
pub async fn read_request(sock: &mut TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(Captured {
                head,
                body: buf[end + 4..end + 4 + len].to_vec(),
            });
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}
