"""Jiaxing's administrative divisions: the reference every link and mart is keyed on."""
