"""Generation of songs from prompts and lyrics (musicot.generate)."""
