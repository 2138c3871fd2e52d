"""Exact packet sets on BDDs, and firewalls compiled into them."""
