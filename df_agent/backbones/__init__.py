"""Network backbones; each low-dimensional unit maps (z_{t-1}, noisy token, level) to (z_t, prediction)."""
