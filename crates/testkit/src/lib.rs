//! Real parts for tests: a throwaway PostgreSQL cluster started from the installed
//! binaries, an in-process S3-compatible server (s3s-fs) on 127.0.0.1:0, a fake SMTP
//! server, and audio fixtures, well-formed and hostile.

pub mod audio;
pub mod hostile_audio;
pub mod postgres;
pub mod s3;
pub mod smtp;
