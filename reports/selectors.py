"""Reads behind the reports: each takes the viewing person and returns only what they may see."""
