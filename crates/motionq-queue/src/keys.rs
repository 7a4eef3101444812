//! Redis key names of one queue. Every key of a queue carries the same hash tag (`{<queue>}`), so
//! the scripts that touch several of them run on one Redis Cluster slot.

use crate::error::QueueError;

/// The keys of one queue: `<prefix>:q:{<queue>}:<part>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// Queue name (the hash tag).
    pub queue: String,
    /// The work stream (consumer group, pending entries).
    pub stream: String,
    /// Delayed jobs (retries, `push_after`): a ZSET scored by due time in ms (Redis time).
    pub delayed: String,
    /// The dead-letter stream.
    pub dead: String,
}

impl QueueKeys {
    /// Builds the key names; the queue name and prefix must not contain braces (they would
    /// change the hash tag) and the queue name must not be empty.
    pub fn new(prefix: &str, queue: &str) -> Result<Self, QueueError> {
        if queue.is_empty() || queue.len() > 100 {
            return Err(QueueError::Config(format!(
                "queue name `{queue}` must be 1 to 100 characters"
            )));
        }
        for (what, s) in [("queue name", queue), ("redis.key_prefix", prefix)] {
            if s.contains(['{', '}']) || s.chars().any(char::is_whitespace) {
                return Err(QueueError::Config(format!(
                    "{what} `{s}` must not contain braces or whitespace (it would break the \
                     queue's hash tag)"
                )));
            }
        }
        let base = format!("{prefix}:q:{{{queue}}}");
        Ok(Self {
            queue: queue.to_string(),
            stream: format!("{base}:stream"),
            delayed: format!("{base}:delayed"),
            dead: format!("{base}:dead"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = QueueKeys::new("mq", "submit").unwrap();
        assert_eq!(k.stream, "mq:q:{submit}:stream");
        assert_eq!(k.delayed, "mq:q:{submit}:delayed");
        assert_eq!(k.dead, "mq:q:{submit}:dead");
        assert!(QueueKeys::new("mq", "a{b}").is_err());
        assert!(QueueKeys::new("m{q}", "a").is_err());
        assert!(QueueKeys::new("mq", "").is_err());
    }
}
