"""The published language between modules: frozen, versioned event models.

One file per publishing module. Within a version, changes are additive only.
"""
