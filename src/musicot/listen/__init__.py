"""Listening: the generated songs as static pages, the blinded MOS test kit and its ratings' aggregation."""
