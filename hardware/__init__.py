"""df-agent: hardware package."""
