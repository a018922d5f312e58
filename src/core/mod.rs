//! The bottom layer: run state shared by every stage, checked conversions of outside numbers,
//! the one redaction point, text and file helpers. Uses no other module of the crate.

pub mod checked;
pub mod digest;
pub mod files;
pub mod hash;
pub mod ids;
pub mod redact;
pub mod run_state;
pub mod text;
pub mod transient;
