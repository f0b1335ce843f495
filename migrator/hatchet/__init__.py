"""Hatchet's profile: ports of its Go migrations, patched downs and history quirks."""
