"""Access reviews of assignments: instances created from a policy's review settings."""
