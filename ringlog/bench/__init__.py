"""`ringlog bench ...`: commands that print figures, as ratios to the raw bus measured in the same run."""
