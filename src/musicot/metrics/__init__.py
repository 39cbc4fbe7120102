"""Evaluation metrics of generated songs, one small module each (in the manner of fadtk)."""
