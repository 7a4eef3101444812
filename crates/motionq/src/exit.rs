//! Errors at the edge, with the documented exit codes.

use std::process::ExitCode;

/// A command's failure: what to print and which exit code to return.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: Redis down, I/O, config.
    pub fn operational(e: impl std::fmt::Display) -> Self {
        Self {
            code: 1,
            message: e.to_string(),
        }
    }
    /// Exit 2: invalid input. The message may be empty when the problems were already printed.
    pub fn invalid(e: impl std::fmt::Display) -> Self {
        Self {
            code: 2,
            message: e.to_string(),
        }
    }
    /// Exit 3: refused (budget, conflicts).
    pub fn refused(e: impl std::fmt::Display) -> Self {
        Self {
            code: 3,
            message: e.to_string(),
        }
    }

    pub fn report(self) -> ExitCode {
        if !self.message.is_empty() {
            eprintln!("error: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

impl From<motionq_store::StoreError> for Failure {
    fn from(e: motionq_store::StoreError) -> Self {
        use motionq_store::StoreError as E;
        match e {
            E::Conflict(_) | E::CampaignDiffers { .. } | E::CampaignCancelled(_) => {
                Failure::refused(e)
            }
            E::UnknownCampaign(_) => Failure::invalid(e),
            E::Redis(_) | E::Corrupt { .. } => Failure::operational(e),
        }
    }
}
