"""Files that ship inside the package: the offline check-worthiness model."""
