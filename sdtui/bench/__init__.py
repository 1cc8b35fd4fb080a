"""`sdtui bench`: real architectures with random weights, and the measurements."""
