"""My Access pages: each view asks the selectors what to show and a service what to change."""
