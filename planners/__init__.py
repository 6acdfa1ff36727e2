"""df-agent: planners package."""
