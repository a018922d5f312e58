//! Everything specific to one API. Uses only `core`.

pub mod partner_center;
