//! Object storage: local folder or S3-compatible bucket, keys built only from validated ids.
