"""The store folder: building segment files, reading them back, and the commit that publishes them.

The only room that touches segment files (the catalog is the one other file); object storage
would replace it with fsspec-backed twins (docs/architecture.md).
"""
