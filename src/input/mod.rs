//! The input stage: the CSV dialect and header, rows and their validation, passwords (rules
//! and generation), rows that name customers by domain and users by UPN (`names`). Uses `core`, `targets` and `settings`.

pub mod columns;
pub mod context;
pub mod csv;
pub mod interleave;
pub mod names;
pub mod passwords;
pub mod rows;
