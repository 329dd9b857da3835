"""The object-store port for asyncio, and its adapters (in memory, aiobotocore)."""
