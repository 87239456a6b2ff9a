print("keyway-bench: not yet")
