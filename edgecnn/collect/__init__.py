"""The field loop on the device: keep frames worth labelling (rules, a bounded store) and watch for drift."""
