//! bulkpatch: applies bulk user updates through the Partner Center REST API.
//!
//! Layers, each using only those below it (a test, `layering`, keeps it so):
//! - `core`: run state, checked conversions, redaction, text and file helpers (a leaf);
//! - `targets`: everything specific to one API (Partner Center);
//! - `settings`: options resolved once (command line > environment > file > default);
//! - `input` (CSV to rows), `output` (results, resume, secrets, summary, progress) and
//!   `send` (pace, retry, HTTP, tokens, the worker pool): the pipeline's stages;
//! - `report`: results or audit files to HTML and Markdown;
//! - `app`: `run`, the pipeline end to end;
//! - `cli`, `demo` and the `simulator` (behind its feature) on top; `main` only parses,
//!   sets up logging, prints and maps the outcome to an exit code.

pub mod app;
pub mod cli;
pub mod core;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod input;
pub mod output;
pub mod report;
pub mod send;
pub mod settings;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod targets;

pub use app::{error_chain, run, Error};
pub use output::summary::{exit, Summary};
pub use settings::Settings;
