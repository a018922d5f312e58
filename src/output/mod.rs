//! The output stage: the results schema, its writer and its one reader, resume (fingerprint,
//! lock, compaction), the secrets file and its hand-over, output-path safety, the run summary
//! and progress. Uses `core`, `targets`, `settings` and `input`.

pub mod audit_file;
pub mod export_file;
pub mod handover;
pub mod paths;
pub mod progress;
pub mod reader;
pub mod results;
pub mod resume;
pub mod secrets;
pub mod summary;
pub mod undo;
