"""df-agent: policies package."""
