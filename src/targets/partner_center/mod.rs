//! Partner Center: the request body, the fields a row may change, reading users back for audits.

pub mod audit;
pub mod body;
