"""Everything the user sees of a run: subscribers of the bus that print, draw or write."""
