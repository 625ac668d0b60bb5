"""Named instances side by side (dev, release): registry, background servers, releases,
exported wiring."""
