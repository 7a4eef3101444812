//! The queue's error type.

use motionq_store::ConnectError;

/// What went wrong in a queue operation. Workers never stop on these: the backend logs them,
/// backs off and tries again. Producers (`push*`) and inspection calls return them.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis answered with an error or the connection failed. Retried with backoff inside
    /// workers; a producer should retry the push (a retried push can enqueue the job twice,
    /// which at-least-once delivery already allows).
    #[error("redis error on queue `{queue}`: {source}")]
    Redis {
        /// Queue name.
        queue: String,
        /// The Redis error (never contains a password).
        #[source]
        source: redis::RedisError,
    },
    /// Redis could not be reached at all when connecting. Retried by workers; returned by
    /// [`StreamQueue::connect`](crate::StreamQueue::connect).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The job could not be encoded as JSON. Never retried: the value is not serializable.
    #[error("cannot encode a job for queue `{queue}`: {source}")]
    Encode {
        /// Queue name.
        queue: String,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
    /// The queue configuration or queue name is invalid; the message names the field.
    /// Never retried: fix the config.
    #[error("{0}")]
    Config(String),
    /// Redis answered with something the queue does not understand (a key of the wrong type,
    /// a foreign writer). Not retried by producers; workers log it and go on.
    #[error("unexpected reply on queue `{queue}`: {what}")]
    Protocol {
        /// Queue name.
        queue: String,
        /// What was unexpected.
        what: String,
    },
}
