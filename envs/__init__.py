"""df-agent: envs package."""
