//! Bounded random access to a remote file over HTTP.
//!
//! [`Remote::read_at`] returns the bytes at an offset. Against a server that honours `Range`
//! (answers 206) every read is a ranged GET of just those bytes. Against one that ignores it
//! (answers 200 with the whole body) the body of one GET is consumed front to back, bytes before
//! the wanted offset are discarded as they arrive, and the response is dropped (closing the
//! connection) as soon as the prober stops asking. Either way every body byte received counts
//! against `max_bytes`, and a read that would exceed it fails with [`ProbeError::TooLarge`].

use reqwest::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_RANGE, RANGE};
use reqwest::{Client, Response, StatusCode};
use url::Url;

use crate::error::{describe_reqwest, redact, ProbeError};

enum Mode {
    /// The server answers 206 to ranged requests.
    Ranged,
    /// The server sends the whole body; `response` is positioned at `window_start + window.len()`.
    Stream { response: Option<Response> },
}

pub(crate) struct Remote<'a> {
    client: &'a Client,
    url: &'a Url,
    max_bytes: u64,
    /// Minimum size of a ranged read (the first request's size).
    readahead: u64,
    mode: Mode,
    /// Total file size, from `Content-Range` or `Content-Length`, or learnt at end of stream.
    total: Option<u64>,
    /// The most recently received bytes and the file offset of the first one.
    window_start: u64,
    window: Vec<u8>,
    /// Body bytes received so far, over all requests.
    pub bytes_read: u64,
    /// HTTP requests sent so far.
    pub requests: u32,
}

impl<'a> Remote<'a> {
    /// Sends the first request, for the first `first_len` bytes.
    pub async fn open(
        client: &'a Client,
        url: &'a Url,
        max_bytes: u64,
        first_len: u64,
    ) -> Result<Remote<'a>, ProbeError> {
        let mut remote = Remote {
            client,
            url,
            max_bytes,
            readahead: 0,
            mode: Mode::Ranged,
            total: None,
            window_start: 0,
            window: Vec::new(),
            bytes_read: 0,
            requests: 0,
        };
        let first_len = first_len.clamp(16, max_bytes.max(16));
        remote.readahead = first_len;
        let response = remote.get(Some((0, first_len))).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let (start, total) = remote.content_range(&response)?;
                if start != 0 {
                    return Err(remote.corrupt(format!(
                        "asked for bytes from 0, the server sent bytes from {start}"
                    )));
                }
                remote.total = total;
                remote.window = remote.read_body(response, first_len).await?;
            }
            StatusCode::OK => {
                // Nothing is read yet: a whole-body answer is consumed only as far as the
                // prober asks, so a faststart header costs just its own bytes.
                remote.total = response.content_length();
                remote.mode = Mode::Stream {
                    response: Some(response),
                };
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // Only an empty file cannot satisfy a range starting at byte 0.
                remote.total = Some(0);
            }
            status => return Err(remote.status_error(status)),
        }
        Ok(remote)
    }

    /// The file size, when the server said it or the stream ended.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Sets the minimum size of later ranged reads.
    pub fn set_readahead(&mut self, bytes: u64) {
        self.readahead = bytes;
    }

    /// Whether `offset..offset + len` is already at hand (no request needed).
    pub fn holds(&self, offset: u64, len: u64) -> bool {
        let window_end = self.window_start + self.window.len() as u64;
        offset >= self.window_start && offset.saturating_add(len) <= window_end
    }

    /// Up to `len` bytes at `offset`; fewer only where the file ends.
    pub async fn read_at(&mut self, offset: u64, len: u64) -> Result<&[u8], ProbeError> {
        let end = match self.total {
            Some(total) => offset.saturating_add(len).min(total),
            None => offset.saturating_add(len),
        };
        if end <= offset {
            return Ok(&[]);
        }
        let window_end = self.window_start + self.window.len() as u64;
        let cached = offset >= self.window_start && end <= window_end;
        if !cached {
            match self.mode {
                Mode::Ranged => {
                    // Read ahead: the next box header or the moov is usually close by, and one
                    // larger request beats several tiny ones.
                    let ahead = offset.saturating_add(self.readahead.max(len));
                    let ahead = self.total.map_or(ahead, |total| ahead.min(total));
                    self.fetch_range(offset, ahead).await?
                }
                Mode::Stream { .. } => self.fill(offset, end - offset).await?,
            }
        }
        let window_end = self.window_start + self.window.len() as u64;
        if offset < self.window_start || offset >= window_end {
            return Ok(&[]); // nothing there: the file ends before `offset`
        }
        let from = (offset - self.window_start) as usize;
        let to = (end.min(window_end) - self.window_start) as usize;
        Ok(&self.window[from..to])
    }

    /// Ranged mode: makes the window cover `offset..end` (or up to the end of the file).
    async fn fetch_range(&mut self, offset: u64, end: u64) -> Result<(), ProbeError> {
        let window_end = self.window_start + self.window.len() as u64;
        // Extend the window when the wanted bytes continue it, instead of fetching them again.
        let (from, keep) = if offset >= self.window_start && offset <= window_end {
            (window_end, true)
        } else {
            (offset, false)
        };
        self.check_budget(end - from, offset)?;
        let response = self.get(Some((from, end - from))).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let (start, total) = self.content_range(&response)?;
                if start != from {
                    return Err(self.corrupt(format!(
                        "asked for bytes from {from}, the server sent bytes from {start}"
                    )));
                }
                if total.is_some() {
                    self.total = total;
                }
                let body = self.read_body(response, end - from).await?;
                if keep {
                    self.window.extend_from_slice(&body);
                } else {
                    self.window_start = from;
                    self.window = body;
                }
                Ok(())
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // Past the end of a file whose size we did not know: nothing there.
                if self.total.is_none() {
                    self.total = Some(from);
                }
                Ok(())
            }
            StatusCode::OK => {
                // The server stopped honouring Range: read this whole-body answer forwards.
                self.total = response.content_length().or(self.total);
                self.mode = Mode::Stream {
                    response: Some(response),
                };
                self.window_start = 0;
                self.window.clear();
                self.fill(offset, end - offset).await
            }
            status => Err(self.status_error(status)),
        }
    }

    /// Stream mode: makes the window start at `offset` and hold `len` bytes (or up to the end).
    async fn fill(&mut self, offset: u64, len: u64) -> Result<(), ProbeError> {
        if offset < self.window_start {
            // Going backwards needs the body again from the start.
            let response = self.get(None).await?;
            if !response.status().is_success() {
                return Err(self.status_error(response.status()));
            }
            self.mode = Mode::Stream {
                response: Some(response),
            };
            self.window_start = 0;
            self.window.clear();
        }
        // Forget what lies before the wanted offset.
        let skip = ((offset - self.window_start) as usize).min(self.window.len());
        self.window.drain(..skip);
        self.window_start += skip as u64;
        while self.window_start + (self.window.len() as u64) < offset + len {
            let Mode::Stream { response } = &mut self.mode else {
                unreachable!("fill is only called in stream mode");
            };
            let Some(body) = response.as_mut() else {
                break; // the body already ended
            };
            let chunk = match body.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    *response = None;
                    let end = self.window_start + self.window.len() as u64;
                    self.total = Some(end);
                    break;
                }
                Err(err) => return Err(self.unreachable(describe_reqwest(err))),
            };
            self.bytes_read += chunk.len() as u64;
            if self.bytes_read > self.max_bytes {
                return Err(ProbeError::TooLarge {
                    url: redact(self.url),
                    detail: format!(
                        "the server ignores Range requests, and the bytes needed at offset {offset} \
                         lie beyond the {} byte read limit",
                        self.max_bytes
                    ),
                });
            }
            let chunk_start = self.window_start + self.window.len() as u64;
            if self.window.is_empty() && chunk_start + (chunk.len() as u64) <= offset {
                // Entirely before the offset (e.g. media data being skipped): drop it.
                self.window_start += chunk.len() as u64;
                continue;
            }
            let from = offset.saturating_sub(chunk_start) as usize;
            if self.window.is_empty() {
                self.window_start = chunk_start + from as u64;
            }
            self.window.extend_from_slice(&chunk[from..]);
        }
        Ok(())
    }

    fn check_budget(&self, more: u64, offset: u64) -> Result<(), ProbeError> {
        if self.bytes_read.saturating_add(more) > self.max_bytes {
            return Err(ProbeError::TooLarge {
                url: redact(self.url),
                detail: format!(
                    "reading {more} bytes at offset {offset} would pass the {} byte read limit \
                     ({} already read)",
                    self.max_bytes, self.bytes_read
                ),
            });
        }
        Ok(())
    }

    async fn get(&mut self, range: Option<(u64, u64)>) -> Result<Response, ProbeError> {
        let mut request = self
            .client
            .get(self.url.clone())
            // Byte offsets must refer to the file itself, not to a compressed transfer.
            .header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Some((start, len)) = range {
            request = request.header(RANGE, format!("bytes={start}-{}", start + len - 1));
        }
        self.requests += 1;
        request
            .send()
            .await
            .map_err(|err| self.unreachable(describe_reqwest(err)))
    }

    /// Reads at most `limit` body bytes; a server sending more than asked is cut off.
    async fn read_body(
        &mut self,
        mut response: Response,
        limit: u64,
    ) -> Result<Vec<u8>, ProbeError> {
        let mut body = Vec::with_capacity(limit.min(1 << 20) as usize);
        while (body.len() as u64) < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.bytes_read += chunk.len() as u64;
                    let room = (limit - body.len() as u64) as usize;
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(err) => return Err(self.unreachable(describe_reqwest(err))),
            }
        }
        Ok(body)
    }

    /// `Content-Range: bytes <start>-<end>/<total or *>` → (start, total).
    fn content_range(&self, response: &Response) -> Result<(u64, Option<u64>), ProbeError> {
        let header = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.corrupt("206 Partial Content without a Content-Range header".into())
            })?;
        parse_content_range(header)
            .ok_or_else(|| self.corrupt(format!("unreadable Content-Range {header:?}")))
    }

    fn status_error(&self, status: StatusCode) -> ProbeError {
        ProbeError::HttpStatus {
            url: redact(self.url),
            status: status.as_u16(),
        }
    }

    fn unreachable(&self, reason: String) -> ProbeError {
        ProbeError::Unreachable {
            url: redact(self.url),
            reason,
        }
    }

    fn corrupt(&self, detail: String) -> ProbeError {
        ProbeError::Corrupt {
            url: redact(self.url),
            detail,
        }
    }
}

fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 500-999/*"), Some((500, None)));
        assert_eq!(parse_content_range("bytes 9-1/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes */1000"), None);
    }
}
