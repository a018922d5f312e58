//! The input stage: the CSV dialect and header, rows and their validation, passwords (rules
//! and generation). Uses `core`, `targets` and `settings`.

pub mod columns;
pub mod context;
pub mod csv;
pub mod interleave;
pub mod passwords;
pub mod rows;
