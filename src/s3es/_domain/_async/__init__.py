"""The async source of the repository and the command handler: generates their sync modules."""
