"""Small, real examples that ship with corenas and power the default search."""
