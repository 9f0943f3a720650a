//! An in-process S3-compatible server (s3s-fs) for tests.
