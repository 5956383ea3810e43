//! Integration tests that need more than SQL: restarts, several processes, SIGKILL, S3.
//! One binary so it links once.

mod support;

mod audit;
mod bypass;
mod concurrency;
mod crash;
mod delta_log;
mod demo;
mod extract;
mod fuzz;
mod linkage;
mod migrate;
mod persistence;
mod pg_import;
mod receipts;
mod s3;
mod server;
