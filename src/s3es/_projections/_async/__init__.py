"""The async source of the consumers: generates ``s3es._projections``' sync modules."""
