"""Client report assets, one per configured client."""
