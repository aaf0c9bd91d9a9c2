"""The proxy-task design toolkit (``corenas proxy``): correlation candidates, proxy search
by rank correlation, proxy variance."""
