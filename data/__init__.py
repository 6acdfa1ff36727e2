"""df-agent: data package."""
