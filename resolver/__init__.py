"""Finding Hatchet releases and their goose migrations on GitHub.

This package knows the GitHub REST/GraphQL APIs, tags, releases and the on-disk cache. It knows
nothing about databases or goose's runtime; it hands back file names, versions and bytes.
"""
