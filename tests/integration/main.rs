//! Integration tests: the real binary and the public `run` against the built-in simulator on 127.0.0.1.

mod audit_reports;
mod bad_input;
mod cli_and_config;
mod commands;
mod credentials;
mod fair_customers;
mod hostile_server;
mod hostile_values;
mod input_rows;
mod interrupt;
mod layering;
mod output_paths;
mod passwords;
mod pipeline;
mod properties;
mod resume;
mod retries;
mod rough_edges;
mod secrets;
mod support;
mod sweep;
mod tenant_refusals;
mod throttling;
mod tls_and_proxies;
mod torn_records;
mod toy_target;
