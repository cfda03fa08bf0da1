"""jobify: an asyncio job scheduler."""
