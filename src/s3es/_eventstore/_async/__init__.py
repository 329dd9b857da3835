"""The async source of the event store: generates ``s3es._eventstore``'s sync modules."""
