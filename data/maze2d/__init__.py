"""maze2d data: expert generation into Minari (`generate`), in-memory loading (`dataset`), training windows."""
