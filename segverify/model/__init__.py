"""The vendor-independent model: addresses, rules, and the network of segments and devices."""
