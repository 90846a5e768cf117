"""fakeaws: a protocol-faithful local stand-in for AWS IAM, STS, S3 and Secrets Manager.
Python 3 standard library only. Run with `python3 -m fakeaws --help` from tests/fakeaws."""
