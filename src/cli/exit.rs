//! The exit status, one convention for every subcommand (docs/cli.md):
//!
//! | status | meaning |
//! |---|---|
//! | 0 | passed |
//! | 1 | a check failed, or the run could not be carried out |
//! | 2 | a usage or configuration error, found before anything started |
//! | 128 + n | stopped by signal n |

use std::process::ExitCode;

use super::signals::{signal_name, signalled};

/// Why a command could not do its work.
#[derive(Debug)]
pub enum CliError {
    /// A usage or configuration error (exit 2): a bad flag, file or variable, an
    /// unknown name, an option the scenario or workload does not take. Nothing ran.
    Usage(String),
    /// The run could not be carried out (exit 1): a server that cannot start, a
    /// connection that fails, a report that cannot be written.
    Run(String),
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// A run error.
    pub fn run(message: impl Into<String>) -> Self {
        CliError::Run(message.into())
    }
}

/// What a command that did its work found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything passed.
    Passed,
    /// A check failed.
    Failed,
}

impl From<bool> for Verdict {
    fn from(passed: bool) -> Self {
        if passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        }
    }
}

/// The exit status of a command's outcome, its error printed on standard error; a
/// signal that stopped the run wins over everything else.
pub fn exit_code(outcome: Result<Verdict, CliError>) -> ExitCode {
    let error = match &outcome {
        Err(CliError::Usage(message) | CliError::Run(message)) => Some(message),
        Ok(_) => None,
    };
    if let Some(message) = error {
        eprintln!("error: {message}");
    }
    if let Some(number) = signalled() {
        eprintln!("Interrupted by {}.", signal_name(number));
        return ExitCode::from(u8::try_from(128 + number).unwrap_or(u8::MAX));
    }
    ExitCode::from(match outcome {
        Ok(Verdict::Passed) => 0,
        Ok(Verdict::Failed) | Err(CliError::Run(_)) => 1,
        Err(CliError::Usage(_)) => 2,
    })
}
