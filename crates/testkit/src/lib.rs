//! Real parts for tests: a throwaway PostgreSQL cluster started from the installed
//! binaries and an in-process S3-compatible server (s3s-fs) on 127.0.0.1:0.

pub mod audio;
pub mod postgres;
pub mod s3;
