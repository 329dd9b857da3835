"""The async source of the S3 read-model store, and the async read-model port."""
