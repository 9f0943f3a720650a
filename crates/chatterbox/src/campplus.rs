//! CAMPPlus x-vector speaker embedding (S3Gen conditioning) and its Kaldi fbank front end.
