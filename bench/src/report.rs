//! Comparison report: medians, ratios and PASS/FAIL rows from a directory of result files.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bsf-bench report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Directory of result JSON files written by compare.sh.
    #[arg(long)]
    pub results: PathBuf,
}

/// Prints the report.
pub fn main(_a: &ReportArgs) -> Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
