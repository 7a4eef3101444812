//! One module per subcommand.
pub mod control;
pub mod demo;
pub mod enqueue;
pub mod example;
pub mod report;
pub mod status;
pub mod validate;
pub mod worker;
