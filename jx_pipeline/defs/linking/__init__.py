"""Linking: records attached to geographic entities, persons and organisations resolved across departments."""
