"""What every method stands on: masks in the weight's access path, module swaps that carry
them, layer name patterns, attention with Linear projections, and the record of transforms a
file replays onto a fresh model."""
