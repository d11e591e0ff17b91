"""Bytes <-> packs <-> QR frames <-> video packets: the codec, with no files and no catalog."""
