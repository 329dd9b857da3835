"""What every layer shares and none owns: backoff, the JSON converter, logging, progress."""
